package interchange

// taskTable holds the unfinished tasks by id. Ids are handed out in
// order, so the tasks live in pages of consecutive ids rather than one
// allocation and one map entry each: a queued task costs its 64 bytes
// (TestTaskSize) and a page is freed once every task of it has finished.
// Their submission times are kept apart, by runs of ids (submitted.go).
// A *task stays valid until the task finishes; a finished task's slot
// keeps state stDone, so that queue entries still pointing at it are
// skipped.
type taskTable struct {
	pages     map[uint64]*taskPage
	n         int
	submitted submitTimes
}

const (
	pageBits = 8 // 256 tasks, 20 KiB a page: a straggler pins little
	pageMask = 1<<pageBits - 1
)

type taskPage struct {
	t    [1 << pageBits]task
	live int
}

// add stores a new task (by its id), submitted at unix ns submitted (0 =
// unknown), and returns where it lives. Ids come in increasing order.
func (tt *taskTable) add(v task, submitted int64) *task {
	if tt.pages == nil {
		tt.pages = map[uint64]*taskPage{}
	}
	p := tt.pages[v.id>>pageBits]
	if p == nil {
		p = &taskPage{}
		tt.pages[v.id>>pageBits] = p
	}
	t := &p.t[v.id&pageMask]
	*t = v
	p.live++
	tt.n++
	tt.submitted.add(v.id, submitted)
	return t
}

// get returns the unfinished task id, or nil. Ids start at 1: an empty
// slot holds id 0, so id 0 is never a task.
func (tt *taskTable) get(id uint64) *task {
	if id == 0 {
		return nil
	}
	p := tt.pages[id>>pageBits]
	if p == nil {
		return nil
	}
	t := &p.t[id&pageMask]
	if t.id != id || t.state == stDone {
		return nil
	}
	return t
}

// remove forgets a finished task (its state already stDone).
func (tt *taskTable) remove(t *task) {
	t.state = stDone
	t.setFields(encoded{})
	t.pool = nil
	tt.submitted.remove(t.id)
	key := t.id >> pageBits
	p := tt.pages[key]
	p.live--
	tt.n--
	if p.live == 0 {
		delete(tt.pages, key)
	}
}

// submittedAt returns when unfinished task t was submitted, unix ns, 0 =
// unknown.
func (tt *taskTable) submittedAt(t *task) int64 { return tt.submitted.at(t.id) }

// len is the number of unfinished tasks.
func (tt *taskTable) len() int { return tt.n }

// each calls f for every unfinished task, in no particular order.
func (tt *taskTable) each(f func(*task)) {
	for _, p := range tt.pages {
		for i := range p.t {
			if t := &p.t[i]; t.id != 0 && t.state != stDone {
				f(t)
			}
		}
	}
}
