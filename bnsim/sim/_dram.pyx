# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""DRAM timing, compiled: bnsim.sim.dram's clock-by-clock model, skipping clocks where nothing can happen.

The rules are the reference's (bnsim/sim/dram.py), in the same order, on C arrays: per clock,
admission of arrivals into the queues, then per channel a refresh, the write-drain decision, the
oldest ready column command, else the oldest ready ACT or PRE. After a clock, each channel works
out the earliest clock at which any of its queued requests, refreshes or arrivals could move (every
timing rule is a clock before which a command cannot issue), and the loop jumps there: the clocks
in between are ones where the reference does nothing but count its queues and decide again whether
to drain writes. tests/unit/test_dram.py
checks that both give identical cycles and statistics on random and CNN-like request streams.
"""

from libc.stdlib cimport calloc, free

ctypedef long long i64

cdef i64 NEVER = 1LL << 62


cdef struct Timing:
    i64 cl, cwl, trcd, trp, tras, trrd_s, trrd_l, tfaw, tccd_s, tccd_l
    i64 twtr_s, twtr_l, twr, trtp, trfc, trefi, turnaround, burst
    int ranks, groups, banks_per_group, banks_per_rank
    bint split_commands


cdef struct Bank:
    i64 open_row  # -1: closed
    i64 act_ready
    i64 column_ready
    i64 pre_ready
    int wanted_reads  # queued reads to the open row
    int wanted_writes  # queued writes to the open row


cdef struct Channel:
    int* reads  # request indices, oldest first
    int* writes
    int num_reads, num_writes
    bint draining
    Bank* banks  # ranks × banks_per_rank
    i64* activates  # per rank, its last four ACT clocks, oldest first
    int* num_activates
    int* last_act_group  # per rank (-1: none yet)
    i64 column_ready_s
    i64* column_ready_l  # per rank × bank group
    i64* read_ready_l  # per rank × bank group
    i64* read_ready_s  # per rank
    i64 bus_free
    bint bus_write
    int bus_rank
    i64* refresh_due  # per rank (-1: never)
    i64 stat_reads, stat_writes, row_hits, row_misses, row_conflicts
    i64 turnarounds, refreshes, busy_clocks, queued
    # the loop steps a channel only when it may act: the clock it last did, the clocks its queues
    # are counted up to, the earliest it may act again, whether a request joined it since
    i64 stepped, counted, next_at
    bint settled, joined


cdef struct Requests:
    i64* arrival
    int* channel
    int* rank
    int* group  # rank × bank groups + bank group
    int* bank  # index into the channel's banks
    i64* row
    char* write
    i64* done
    i64* admitted  # the clock it entered a queue
    char* kind  # 0: not yet, 1 hit, 2 miss, 3 conflict


cdef inline i64 imax(i64 a, i64 b) noexcept:
    return a if a > b else b


cdef inline bint refresh_owed(Channel* channel, int rank, i64 clock) noexcept:
    cdef i64 due = channel.refresh_due[rank]
    return 0 <= due <= clock


cdef bint refresh(Timing* t, Channel* channel, i64 clock) noexcept:
    """The reference's `_refresh`: True when this clock's command slot goes to a refresh."""
    cdef int rank, b
    cdef i64 due, start
    cdef bint any_open
    cdef Bank* bank
    if not t.trefi:
        return False
    for rank in range(t.ranks):
        due = channel.refresh_due[rank]
        if clock < due:
            continue
        any_open = False
        for b in range(rank * t.banks_per_rank, (rank + 1) * t.banks_per_rank):
            bank = &channel.banks[b]
            if bank.open_row >= 0:
                any_open = True
                if clock < bank.pre_ready:
                    return False
        start = clock + (t.trp if any_open else 0)
        for b in range(rank * t.banks_per_rank, (rank + 1) * t.banks_per_rank):
            bank = &channel.banks[b]
            bank.open_row = -1
            bank.wanted_reads = bank.wanted_writes = 0
            bank.act_ready = imax(bank.act_ready, start + t.trfc)
        channel.refresh_due[rank] = due + t.trefi
        channel.refreshes += 1
        return True
    return False


cdef i64 activate_at(Timing* t, Channel* channel, Bank* bank, int rank, int group) noexcept:
    cdef i64 at = bank.act_ready
    cdef int count = channel.num_activates[rank]
    cdef i64* recent = &channel.activates[4 * rank]
    if count:
        if channel.last_act_group[rank] == group:
            at = imax(at, recent[count - 1] + t.trrd_l)
        else:
            at = imax(at, recent[count - 1] + t.trrd_s)
        if count >= 4:
            at = imax(at, recent[0] + t.tfaw)
    return at


cdef void activate(Timing* t, Channel* channel, Bank* bank, i64 row, int rank, int group,
                   i64 clock) noexcept:
    cdef int count = channel.num_activates[rank], i
    cdef i64* recent = &channel.activates[4 * rank]
    bank.open_row = row
    bank.column_ready = clock + t.trcd
    bank.pre_ready = imax(bank.pre_ready, clock + t.tras)
    if count == 4:
        for i in range(3):
            recent[i] = recent[i + 1]
        recent[3] = clock
    else:
        recent[count] = clock
        channel.num_activates[rank] = count + 1
    channel.last_act_group[rank] = group


cdef i64 column_at(Timing* t, Channel* channel, Bank* bank, int rank, int group_key,
                   bint write) noexcept:
    cdef i64 at = imax(bank.column_ready,
                       imax(channel.column_ready_s, channel.column_ready_l[group_key]))
    cdef i64 bus
    if not write:
        at = imax(at, imax(channel.read_ready_s[rank], channel.read_ready_l[group_key]))
    bus = channel.bus_free
    if write != channel.bus_write or rank != channel.bus_rank:
        bus += t.turnaround
    return imax(at, bus - (t.cwl if write else t.cl))


cdef i64 column(Timing* t, Channel* channel, Bank* bank, int rank, int group_key, i64 clock,
                bint write) noexcept:
    cdef i64 end = clock + (t.cwl if write else t.cl) + t.burst
    if channel.bus_free and write != channel.bus_write:
        channel.turnarounds += 1
    channel.bus_free = end
    channel.bus_write = write
    channel.bus_rank = rank
    channel.column_ready_s = clock + t.tccd_s
    channel.column_ready_l[group_key] = clock + t.tccd_l
    if write:
        bank.pre_ready = imax(bank.pre_ready, end + t.twr)
        channel.read_ready_s[rank] = imax(channel.read_ready_s[rank], end + t.twtr_s)
        channel.read_ready_l[group_key] = imax(channel.read_ready_l[group_key], end + t.twtr_l)
        channel.stat_writes += 1
    else:
        bank.pre_ready = imax(bank.pre_ready, clock + t.trtp)
        channel.stat_reads += 1
    channel.busy_clocks += t.burst
    return end


cdef inline bint drains(Channel* channel, int write_high, int write_low) noexcept:
    """The write-drain decision the reference makes at a clock, from the queues as they are."""
    if channel.draining:
        return channel.num_writes > 0 and (channel.num_writes > write_low or channel.num_reads == 0)
    return channel.num_writes >= write_high or (channel.num_writes > 0 and channel.num_reads == 0)


cdef inline int* served(Channel* channel, bint writes, int* length) noexcept:
    """The queue of the direction being served, and its length."""
    if writes:
        length[0] = channel.num_writes
        return channel.writes
    length[0] = channel.num_reads
    return channel.reads


cdef inline bint row_still_wanted(Bank* bank, bint writes) noexcept:
    """Whether a queued request of this direction hits the bank's open row."""
    return (bank.wanted_writes if writes else bank.wanted_reads) > 0


cdef void count_wanted(Channel* channel, Requests* r, int number) noexcept:
    """Count the queued requests that hit bank `number`'s newly opened row."""
    cdef Bank* bank = &channel.banks[number]
    cdef int i
    bank.wanted_reads = bank.wanted_writes = 0
    for i in range(channel.num_reads):
        if r.bank[channel.reads[i]] == number and r.row[channel.reads[i]] == bank.open_row:
            bank.wanted_reads += 1
    for i in range(channel.num_writes):
        if r.bank[channel.writes[i]] == number and r.row[channel.writes[i]] == bank.open_row:
            bank.wanted_writes += 1


cdef int step(Timing* t, Channel* channel, Requests* r, i64 clock, int write_high,
              int write_low) noexcept:
    """The reference's `_step`: at most one command (split buses: one row and one column
    command); returns the requests completed (0 or 1)."""
    cdef bint refreshed = refresh(t, channel, clock)
    cdef int completed
    if refreshed and not t.split_commands:
        return 0
    channel.draining = drains(channel, write_high, write_low)
    completed = column_command(t, channel, r, clock)
    if not refreshed and (t.split_commands or not completed):
        row_command(t, channel, r, clock)
    return completed


cdef int column_command(Timing* t, Channel* channel, Requests* r, i64 clock) noexcept:
    """The oldest request of the queue being served whose column command can go now."""
    cdef int* queue
    cdef int length, position, index, i
    cdef Bank* bank
    cdef bint write
    queue = served(channel, channel.draining, &length)
    for position in range(length):
        index = queue[position]
        bank = &channel.banks[r.bank[index]]
        write = r.write[index]
        if (bank.open_row == r.row[index]
                and column_at(t, channel, bank, r.rank[index], r.group[index], write) <= clock
                and not refresh_owed(channel, r.rank[index], clock)):
            if r.kind[index] == 0:
                r.kind[index] = 1
            if r.kind[index] == 1:
                channel.row_hits += 1
            elif r.kind[index] == 2:
                channel.row_misses += 1
            else:
                channel.row_conflicts += 1
            r.done[index] = column(t, channel, bank, r.rank[index], r.group[index], clock, write)
            if write:
                bank.wanted_writes -= 1
            else:
                bank.wanted_reads -= 1
            for i in range(position, length - 1):
                queue[i] = queue[i + 1]
            if channel.draining:
                channel.num_writes -= 1
            else:
                channel.num_reads -= 1
            return 1
    return 0


cdef void row_command(Timing* t, Channel* channel, Requests* r, i64 clock) noexcept:
    """The oldest request of the queue being served whose ACT or PRE can go now."""
    cdef int* queue
    cdef int length, position, index
    cdef Bank* bank
    queue = served(channel, channel.draining, &length)
    for position in range(length):
        index = queue[position]
        bank = &channel.banks[r.bank[index]]
        if bank.open_row < 0:
            if (activate_at(t, channel, bank, r.rank[index], r.group[index] % t.groups) <= clock
                    and not refresh_owed(channel, r.rank[index], clock)):
                if r.kind[index] == 0:
                    r.kind[index] = 2
                activate(t, channel, bank, r.row[index], r.rank[index],
                         r.group[index] % t.groups, clock)
                count_wanted(channel, r, r.bank[index])
                return
        elif (bank.open_row != r.row[index]
                and not row_still_wanted(bank, channel.draining)
                and clock >= bank.pre_ready):
            if r.kind[index] == 0:
                r.kind[index] = 3
            bank.open_row = -1
            bank.wanted_reads = bank.wanted_writes = 0
            bank.act_ready = imax(bank.act_ready, clock + t.trp)
            return


cdef i64 next_move(Timing* t, Channel* channel, Requests* r, i64 clock, int write_high,
                   int write_low) noexcept:
    """A clock after `clock` before which this channel can issue nothing (NEVER: not by itself)."""
    cdef i64 soonest = NEVER, at, ready
    cdef int rank, b, position, index, length
    cdef int* queue
    cdef Bank* bank
    if t.trefi:
        for rank in range(t.ranks):
            at = channel.refresh_due[rank]
            if at <= clock:  # owed: it goes once every open row of the rank may close
                for b in range(rank * t.banks_per_rank, (rank + 1) * t.banks_per_rank):
                    if channel.banks[b].open_row >= 0:
                        at = imax(at, channel.banks[b].pre_ready)
            if at < soonest:
                soonest = at
    queue = served(channel, drains(channel, write_high, write_low), &length)
    for position in range(length):
        index = queue[position]
        bank = &channel.banks[r.bank[index]]
        if bank.open_row == r.row[index]:
            at = column_at(t, channel, bank, r.rank[index], r.group[index], r.write[index])
        elif bank.open_row < 0:
            at = activate_at(t, channel, bank, r.rank[index], r.group[index] % t.groups)
        elif not row_still_wanted(bank, queue == channel.writes):
            at = bank.pre_ready
        else:
            continue  # the open row's requests go first: they are candidates themselves
        if at < soonest:
            soonest = at
    return imax(soonest, clock + 1)


cdef inline void catch_up(Channel* channel, i64 clock, int write_high, int write_low) noexcept:
    """Do what the reference does to a channel in the clocks since its last step, where it issues
    nothing: count its queues, and decide again whether to drain writes (the same decision each
    clock, the queues unchanged)."""
    channel.queued += (channel.num_reads + channel.num_writes) * (clock - channel.counted)
    channel.counted = clock
    if clock > channel.stepped + 1 and not channel.settled:
        channel.draining = drains(channel, write_high, write_low)
        channel.settled = True


cdef i64 ready_at(Requests* r, int* program, int position, int window, i64 loop_clocks) noexcept:
    """The earliest clock a source's request at `position` of its program may enter a queue."""
    cdef int index = program[position], released
    cdef i64 at = r.arrival[index], release
    if window and position >= window:
        released = program[position - window]
        release = r.admitted[released] if r.write[released] else r.done[released]
        if release < 0:
            return NEVER
        at = imax(at, release + loop_clocks)
    return at


def serve(device, int channels, controller, const i64[::1] arrival, const i64[::1] source,
          const i64[::1] channel, const i64[::1] rank, const i64[::1] bankgroup,
          const i64[::1] bank, const i64[::1] row, const signed char[::1] write):
    """Serve decoded requests (arrays, each source's in its order) as the reference does.

    Returns (done clocks as a list, per-channel statistics as tuples in ChannelStats field order).
    """
    cdef Timing t
    cdef Requests r
    cdef Channel* state
    cdef Channel* ch
    cdef int n = arrival.shape[0], i, c, s, num_sources = 0, position, index
    cdef int read_queue = controller.read_queue, write_queue = controller.write_queue
    cdef int window = controller.window
    cdef int write_high = controller.write_high, write_low = controller.write_low
    cdef i64 loop_clocks = controller.loop_clocks
    cdef i64 clock = 0, next_clock, at, remaining = n
    cdef int* programs = NULL  # every source's requests in order, source after source
    cdef int* first = NULL  # per source, where its program starts in `programs` (and one past)
    cdef int* issued = NULL  # per source, how many of its requests are queued
    t.cl, t.cwl, t.trcd, t.trp, t.tras = device.cl, device.cwl, device.trcd, device.trp, device.tras
    t.trrd_s, t.trrd_l, t.tfaw = device.trrd_s, device.trrd_l, device.tfaw
    t.tccd_s, t.tccd_l, t.twtr_s, t.twtr_l = device.tccd_s, device.tccd_l, device.twtr_s, device.twtr_l
    t.twr, t.trtp, t.trfc, t.trefi = device.twr, device.trtp, device.trfc, device.trefi
    t.turnaround, t.burst = device.turnaround, device.burst_clocks
    t.ranks, t.groups, t.banks_per_group = device.ranks, device.bank_groups, device.banks_per_group
    t.banks_per_rank = t.groups * t.banks_per_group
    t.split_commands = device.split_commands
    for i in range(n):
        if source[i] + 1 > num_sources:
            num_sources = source[i] + 1
    r.arrival = <i64*> calloc(n + 1, sizeof(i64))
    r.row = <i64*> calloc(n + 1, sizeof(i64))
    r.done = <i64*> calloc(n + 1, sizeof(i64))
    r.admitted = <i64*> calloc(n + 1, sizeof(i64))
    r.channel = <int*> calloc(n + 1, sizeof(int))
    r.rank = <int*> calloc(n + 1, sizeof(int))
    r.group = <int*> calloc(n + 1, sizeof(int))
    r.bank = <int*> calloc(n + 1, sizeof(int))
    r.write = <char*> calloc(n + 1, sizeof(char))
    r.kind = <char*> calloc(n + 1, sizeof(char))
    programs = <int*> calloc(n + 1, sizeof(int))
    first = <int*> calloc(num_sources + 2, sizeof(int))
    issued = <int*> calloc(num_sources + 1, sizeof(int))
    state = <Channel*> calloc(channels, sizeof(Channel))
    try:
        if not (r.arrival and r.row and r.done and r.admitted and r.channel and r.rank
                and r.group and r.bank and r.write and r.kind and programs and first and issued
                and state):
            raise MemoryError("the DRAM model's request arrays")
        for i in range(n):
            r.arrival[i] = arrival[i]
            r.channel[i] = channel[i]
            r.rank[i] = rank[i]
            r.group[i] = rank[i] * t.groups + bankgroup[i]
            r.bank[i] = r.group[i] * t.banks_per_group + bank[i]
            r.row[i] = row[i]
            r.write[i] = write[i] != 0
            r.done[i] = -1
            r.admitted[i] = -1
            first[source[i] + 1] += 1
        for s in range(num_sources):
            first[s + 1] += first[s]
        for i in range(n):  # stable: each program keeps the requests' order
            s = source[i]
            programs[first[s] + issued[s]] = i
            issued[s] += 1
        for s in range(num_sources):
            issued[s] = 0
        for c in range(channels):
            ch = &state[c]
            ch.reads = <int*> calloc(read_queue + 1, sizeof(int))
            ch.writes = <int*> calloc(write_queue + 1, sizeof(int))
            ch.banks = <Bank*> calloc(t.ranks * t.banks_per_rank, sizeof(Bank))
            ch.activates = <i64*> calloc(4 * t.ranks, sizeof(i64))
            ch.num_activates = <int*> calloc(t.ranks, sizeof(int))
            ch.last_act_group = <int*> calloc(t.ranks, sizeof(int))
            ch.column_ready_l = <i64*> calloc(t.ranks * t.groups, sizeof(i64))
            ch.read_ready_l = <i64*> calloc(t.ranks * t.groups, sizeof(i64))
            ch.read_ready_s = <i64*> calloc(t.ranks, sizeof(i64))
            ch.refresh_due = <i64*> calloc(t.ranks, sizeof(i64))
            if not (ch.reads and ch.writes and ch.banks and ch.activates and ch.num_activates
                    and ch.last_act_group and ch.column_ready_l and ch.read_ready_l
                    and ch.read_ready_s and ch.refresh_due):
                raise MemoryError("the DRAM model's channel state")
            ch.stepped = -1
            for i in range(t.ranks * t.banks_per_rank):
                ch.banks[i].open_row = -1
            for i in range(t.ranks):
                ch.last_act_group[i] = -1
                # ranks take turns, one refresh every tREFI / ranks (staggered)
                ch.refresh_due[i] = t.trefi * (i + 1) // t.ranks if t.trefi else -1
        while remaining:
            for s in range(num_sources):
                while issued[s] < first[s + 1] - first[s]:
                    position = issued[s]
                    if ready_at(&r, &programs[first[s]], position, window, loop_clocks) > clock:
                        break
                    index = programs[first[s] + position]
                    ch = &state[r.channel[index]]
                    if (ch.num_writes >= write_queue if r.write[index]
                            else ch.num_reads >= read_queue):
                        break  # in order: the source's later requests wait behind this one
                    catch_up(ch, clock, write_high, write_low)
                    ch.joined = True
                    if r.write[index]:
                        ch.writes[ch.num_writes] = index
                        ch.num_writes += 1
                        if ch.banks[r.bank[index]].open_row == r.row[index]:
                            ch.banks[r.bank[index]].wanted_writes += 1
                    else:
                        ch.reads[ch.num_reads] = index
                        ch.num_reads += 1
                        if ch.banks[r.bank[index]].open_row == r.row[index]:
                            ch.banks[r.bank[index]].wanted_reads += 1
                    r.admitted[index] = clock
                    issued[s] += 1
            for c in range(channels):
                ch = &state[c]
                if not ch.joined and ch.next_at > clock:
                    continue  # the reference's step would issue nothing
                catch_up(ch, clock, write_high, write_low)
                remaining -= step(&t, ch, &r, clock, write_high, write_low)
                ch.stepped = clock
                ch.settled = ch.joined = False
                ch.queued += ch.num_reads + ch.num_writes
                ch.counted = clock + 1
                ch.next_at = next_move(&t, ch, &r, clock, write_high, write_low)
            if not remaining:
                next_clock = clock + 1
            else:
                next_clock = NEVER
                for c in range(channels):
                    if state[c].next_at < next_clock:
                        next_clock = state[c].next_at
                for s in range(num_sources):
                    position = issued[s]
                    if position == first[s + 1] - first[s]:
                        continue
                    index = programs[first[s] + position]
                    ch = &state[r.channel[index]]
                    if (ch.num_writes >= write_queue if r.write[index] else ch.num_reads >= read_queue):
                        continue  # it waits for a command of that channel
                    at = ready_at(&r, &programs[first[s]], position, window, loop_clocks)
                    at = imax(at, clock + 1)
                    if at < next_clock:
                        next_clock = at
                if next_clock == NEVER:
                    next_clock = clock + 1
            clock = next_clock
        done = [r.done[i] for i in range(n)]
        stats = [
            (state[c].stat_reads, state[c].stat_writes, state[c].row_hits, state[c].row_misses,
             state[c].row_conflicts, state[c].turnarounds, state[c].refreshes,
             state[c].busy_clocks, state[c].queued)
            for c in range(channels)
        ]
        return done, stats
    finally:
        for c in range(channels if state else 0):
            ch = &state[c]
            free(ch.reads)
            free(ch.writes)
            free(ch.banks)
            free(ch.activates)
            free(ch.num_activates)
            free(ch.last_act_group)
            free(ch.column_ready_l)
            free(ch.read_ready_l)
            free(ch.read_ready_s)
            free(ch.refresh_due)
        free(state)
        free(r.arrival)
        free(r.row)
        free(r.done)
        free(r.admitted)
        free(programs)
        free(first)
        free(issued)
        free(r.channel)
        free(r.rank)
        free(r.group)
        free(r.bank)
        free(r.write)
        free(r.kind)
