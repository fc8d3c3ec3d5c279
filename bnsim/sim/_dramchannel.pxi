# One DRAM channel as bnsim.sim._dram times it: its state, and the rules by which its controller
# issues a command at a clock (the reference's, tests/unit/dram_reference.py), and the earliest clock
# it may issue one again. Included by _dram.pyx, which runs the clocks.

ctypedef long long i64

cdef i64 NEVER = 1LL << 62


cdef struct Timing:
    i64 cl, cwl, trcd, trp, tras, trrd_s, trrd_l, tfaw, tccd_s, tccd_l
    i64 twtr_s, twtr_l, twr, trtp, trfc, trefi, turnaround, burst
    int ranks, groups, banks_per_group, banks_per_rank
    bint split_commands
    bint shared  # reads and writes in one queue (`reads`), served together


cdef struct Bank:
    i64 open_row  # -1: closed
    i64 act_ready
    i64 column_ready
    i64 pre_ready
    int wanted_reads  # queued reads to the open row
    int wanted_writes  # queued writes to the open row
    int queued_reads  # queued reads to this bank
    int queued_writes


cdef struct Channel:
    int* reads  # request indices, oldest first (a shared queue: writes too)
    int* writes
    int num_reads, num_writes
    int* waiting  # the miss queue in front of full queues: a ring, oldest at waiting_head
    int num_waiting, waiting_head
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


cdef inline bint row_still_wanted(Timing* t, Bank* bank, bint writes) noexcept:
    """Whether a request of the queue being served hits the bank's open row."""
    if t.shared:
        return bank.wanted_reads + bank.wanted_writes > 0
    return (bank.wanted_writes if writes else bank.wanted_reads) > 0


cdef void count_wanted(Channel* channel, Requests* r, int number) noexcept:
    """Count the queued requests that hit bank `number`'s newly opened row."""
    cdef Bank* bank = &channel.banks[number]
    cdef int i
    bank.wanted_reads = bank.wanted_writes = 0
    for i in range(channel.num_reads):  # a shared queue holds writes too
        if r.bank[channel.reads[i]] == number and r.row[channel.reads[i]] == bank.open_row:
            if r.write[channel.reads[i]]:
                bank.wanted_writes += 1
            else:
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
    # no column command goes before the last one's tCCD_S, nor before the bus is free for it
    if clock < channel.column_ready_s or clock < channel.bus_free - (
            imax(t.cwl, t.cl) if t.shared else t.cwl if channel.draining else t.cl):
        return 0
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
                bank.queued_writes -= 1
            else:
                bank.wanted_reads -= 1
                bank.queued_reads -= 1
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
                and not row_still_wanted(t, bank, channel.draining)
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
    cdef i64 soonest = NEVER, at
    cdef int rank, b, group_key, queued, hits
    cdef bint writes
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
    # bank by bank, what its queued requests of the direction served may do first: the ones that
    # hit its open row a column command, the others an ACT or a PRE (the same clock for all of a
    # bank's requests of a kind, so one look per bank does for each of them)
    writes = drains(channel, write_high, write_low)
    for b in range(t.ranks * t.banks_per_rank):
        bank = &channel.banks[b]
        if t.shared:
            queued = bank.queued_reads + bank.queued_writes
        else:
            queued = bank.queued_writes if writes else bank.queued_reads
        if not queued:
            continue
        group_key = b // t.banks_per_group
        rank = group_key // t.groups
        if t.shared:
            hits = bank.wanted_reads + bank.wanted_writes
            if bank.open_row >= 0 and bank.wanted_reads:
                soonest = min(soonest, column_at(t, channel, bank, rank, group_key, False))
            if bank.open_row >= 0 and bank.wanted_writes:
                soonest = min(soonest, column_at(t, channel, bank, rank, group_key, True))
        else:
            hits = bank.wanted_writes if writes else bank.wanted_reads
            if bank.open_row >= 0 and hits:
                soonest = min(soonest, column_at(t, channel, bank, rank, group_key, writes))
        if queued > (hits if bank.open_row >= 0 else 0):
            if bank.open_row < 0:
                at = activate_at(t, channel, bank, rank, group_key % t.groups)
            elif not hits:
                at = bank.pre_ready
            else:
                continue  # the open row's requests go first: they are candidates themselves
            if at < soonest:
                soonest = at
    return imax(soonest, clock + 1)
