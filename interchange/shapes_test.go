package interchange

import (
	"strings"
	"testing"
)

func TestShapeTable(t *testing.T) {
	var st shapeTable
	if id, err := st.intern(shapeOf(0, 0, 0, 1, 4)); id != 0 || err != nil {
		t.Fatalf("one node, no size: id %d, %v; want 0 (the zero shape)", id, err)
	}
	a := shape{cores: 4}
	b := shape{gpus: 2, memBytes: 8 << 30}
	ia, _ := st.intern(a)
	ib, _ := st.intern(b)
	ia2, _ := st.intern(a)
	if ia == 0 || ib == 0 || ia == ib || ia2 != ia || st.get(ia) != a || st.get(ib) != b {
		t.Fatalf("ids %d %d %d: want two distinct non-zero ids, the same for the same shape", ia, ib, ia2)
	}
	st.release(ia)
	if st.get(ia) != a || st.len() != 2 {
		t.Fatal("a shape still held by one task was dropped")
	}
	st.release(ia)
	if st.len() != 1 {
		t.Fatalf("%d shapes held, want 1 after every task of a finished", st.len())
	}
	c := shape{nodes: 2, ranks: 4}
	if ic, _ := st.intern(c); ic != ia || st.get(ic) != c {
		t.Fatalf("a freed id was not reused: got %d, want %d", ic, ia)
	}
}

func TestShapeTableFull(t *testing.T) {
	var st shapeTable
	for i := range maxShapes {
		if _, err := st.intern(shape{memBytes: int64(i + 1)}); err != nil {
			t.Fatalf("shape %d: %v", i, err)
		}
	}
	_, err := st.intern(shape{memBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "distinct task sizes") {
		t.Fatalf("one shape too many: err %v, want a clear refusal", err)
	}
	st.release(3)
	if id, err := st.intern(shape{memBytes: -1}); err != nil || id != 3 {
		t.Fatalf("after a release: id %d, %v; want 3", id, err)
	}
}
