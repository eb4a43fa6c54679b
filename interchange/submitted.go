package interchange

import (
	"slices"
	"sort"
)

// submitTimes holds when each unfinished task was submitted, for the
// latency metrics, without 8 bytes in every task: ids are handed out in
// order and the tasks of one submit share its time, so the times are kept
// by runs of ids. A run covers the ids from its first up to the next
// run's first and counts its unfinished tasks; the runs whose tasks have
// all finished are dropped together once they are half of the runs, so
// that a finish costs O(log runs) amortized and the table stays within
// twice the runs that still hold a task.
type submitTimes struct {
	runs []submitRun // by ascending first
	dead int         // runs whose tasks have all finished
}

type submitRun struct {
	first uint64 // the run's lowest id
	ns    int64  // unix ns of the submission, 0 = unknown
	live  int    // unfinished tasks of the run
}

// add records that task id, submitted at ns (0 = unknown), is
// unfinished. Ids come in increasing order: submits hand them out so, and
// a restore (before any submit) reads them by id. An id below the last
// run's would be counted in the run that covers it, so that the counts
// stay right; none comes.
func (st *submitTimes) add(id uint64, ns int64) {
	n := len(st.runs)
	if n == 0 || (id > st.runs[n-1].first && st.runs[n-1].ns != ns) {
		st.runs = append(st.runs, submitRun{first: id, ns: ns, live: 1})
		return
	}
	i := max(st.find(id), 0)
	if st.runs[i].live == 0 {
		st.dead--
	}
	st.runs[i].live++
}

// find returns the index of the run that covers id, or -1.
func (st *submitTimes) find(id uint64) int {
	return sort.Search(len(st.runs), func(i int) bool { return st.runs[i].first > id }) - 1
}

// at returns the submission time of unfinished task id, unix ns, 0 =
// unknown.
func (st *submitTimes) at(id uint64) int64 {
	if i := st.find(id); i >= 0 {
		return st.runs[i].ns
	}
	return 0
}

// remove records that unfinished task id has finished.
func (st *submitTimes) remove(id uint64) {
	i := st.find(id)
	if i < 0 || st.runs[i].live == 0 {
		return
	}
	st.runs[i].live--
	if st.runs[i].live > 0 {
		return
	}
	st.dead++
	if st.dead*2 > len(st.runs) {
		st.runs = slices.DeleteFunc(st.runs, func(r submitRun) bool { return r.live == 0 })
		st.dead = 0
		if cap(st.runs) > 64 && len(st.runs) < cap(st.runs)/4 { // give back what a burst of submits took
			st.runs = slices.Clone(st.runs)
		}
	}
}

// len is the number of runs held.
func (st *submitTimes) len() int { return len(st.runs) }
