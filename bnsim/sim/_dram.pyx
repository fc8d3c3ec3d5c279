# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""DRAM timing, compiled: bnsim.sim.dram's clock-by-clock model, skipping clocks where nothing happens.

The rules are the reference's (tests/unit/dram_reference.py), in the same order, on C arrays (one
channel's state and rules: _dramchannel.pxi): per clock, the miss queues' heads into the controller
queues as they have room, admission of arrivals into the queues (or the miss queue), then
per channel a refresh, the write-drain decision, the oldest ready column command, else the oldest
ready ACT or PRE. After a channel's step it works out the earliest clock at which any of its queued
requests or refreshes could move (every timing rule is a clock before which a command cannot issue);
the loop steps a channel again only then or when a request joins it, and jumps to the earliest such
clock. In the clocks it skips the reference does nothing but count the queues and decide again
whether to drain writes, which a channel catches up on when it is next touched.
tests/unit/test_dram.py checks that both give identical clocks and statistics on hand-worked,
random and CNN-like request streams.
"""

from libc.stdlib cimport calloc, free

include "_dramchannel.pxi"


cdef inline void catch_up(Channel* channel, i64 clock, int write_high, int write_low) noexcept:
    """Do what the reference does to a channel in the clocks since its last step, where it issues
    nothing: count its queues, and decide again whether to drain writes (the same decision each
    clock, the queues unchanged)."""
    channel.queued += (channel.num_reads + channel.num_writes) * (clock - channel.counted)
    channel.counted = clock
    if clock > channel.stepped + 1 and not channel.settled:
        channel.draining = drains(channel, write_high, write_low)
        channel.settled = True


cdef inline bint queue_full(Channel* channel, Requests* r, int index, bint shared, int read_queue,
                            int write_queue) noexcept:
    """Whether the queue request `index` joins (its write queue, or the read or shared one) is full."""
    if r.write[index] and not shared:
        return channel.num_writes >= write_queue
    return channel.num_reads >= read_queue


cdef inline bint must_wait(Channel* channel, Requests* r, int index, bint shared, int read_queue,
                           int write_queue) noexcept:
    """Whether request `index`, arriving now, goes to the miss queue: others wait there before it,
    or its controller queue is full."""
    return channel.num_waiting > 0 or queue_full(channel, r, index, shared, read_queue, write_queue)


cdef inline void enqueue(Channel* channel, Requests* r, int index, bint shared) noexcept:
    """Put request `index` in its controller queue, and count it at its bank."""
    cdef Bank* bank = &channel.banks[r.bank[index]]
    if r.write[index] and not shared:
        channel.writes[channel.num_writes] = index
        channel.num_writes += 1
    else:
        channel.reads[channel.num_reads] = index
        channel.num_reads += 1
    if r.write[index]:
        bank.queued_writes += 1
        bank.wanted_writes += bank.open_row == r.row[index]
    else:
        bank.queued_reads += 1
        bank.wanted_reads += bank.open_row == r.row[index]


cdef inline bint head_fits(Channel* channel, Requests* r, bint shared, int read_queue,
                           int write_queue) noexcept:
    """Whether the miss queue's oldest request has room in its controller queue."""
    return channel.num_waiting > 0 and not queue_full(
        channel, r, channel.waiting[channel.waiting_head], shared, read_queue, write_queue)


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
    cdef int window = controller.window, miss_queue = controller.miss_queue
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
    t.shared = controller.shared
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
            ch.waiting = <int*> calloc(miss_queue + 1, sizeof(int))
            ch.banks = <Bank*> calloc(t.ranks * t.banks_per_rank, sizeof(Bank))
            ch.activates = <i64*> calloc(4 * t.ranks, sizeof(i64))
            ch.num_activates = <int*> calloc(t.ranks, sizeof(int))
            ch.last_act_group = <int*> calloc(t.ranks, sizeof(int))
            ch.column_ready_l = <i64*> calloc(t.ranks * t.groups, sizeof(i64))
            ch.read_ready_l = <i64*> calloc(t.ranks * t.groups, sizeof(i64))
            ch.read_ready_s = <i64*> calloc(t.ranks, sizeof(i64))
            ch.refresh_due = <i64*> calloc(t.ranks, sizeof(i64))
            if not (ch.reads and ch.writes and ch.waiting and ch.banks and ch.activates and ch.num_activates
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
            for c in range(channels if miss_queue else 0):  # miss queues move on as queues take heads
                ch = &state[c]
                while head_fits(ch, &r, t.shared, read_queue, write_queue):
                    catch_up(ch, clock, write_high, write_low)
                    ch.joined = True
                    enqueue(ch, &r, ch.waiting[ch.waiting_head], t.shared)
                    ch.waiting_head = (ch.waiting_head + 1) % (miss_queue + 1)
                    ch.num_waiting -= 1
            for s in range(num_sources):
                while issued[s] < first[s + 1] - first[s]:
                    position = issued[s]
                    if ready_at(&r, &programs[first[s]], position, window, loop_clocks) > clock:
                        break
                    index = programs[first[s] + position]
                    ch = &state[r.channel[index]]
                    if must_wait(ch, &r, index, t.shared, read_queue, write_queue):
                        if ch.num_waiting >= miss_queue:
                            break  # in order: the source's later requests wait behind this one
                        ch.waiting[(ch.waiting_head + ch.num_waiting) % (miss_queue + 1)] = index
                        ch.num_waiting += 1
                    else:
                        catch_up(ch, clock, write_high, write_low)
                        ch.joined = True
                        enqueue(ch, &r, index, t.shared)
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
                    if miss_queue and head_fits(&state[c], &r, t.shared, read_queue, write_queue):
                        next_clock = clock + 1  # a command made room: the miss queue moves on
                for s in range(num_sources):
                    position = issued[s]
                    if position == first[s + 1] - first[s]:
                        continue
                    index = programs[first[s] + position]
                    ch = &state[r.channel[index]]
                    if (must_wait(ch, &r, index, t.shared, read_queue, write_queue)
                            and ch.num_waiting >= miss_queue):
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
            free(ch.waiting)
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
