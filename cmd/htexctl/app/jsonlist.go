package app

import (
	"encoding/json"
	"io"
)

// jsonList writes a JSON list one element at a time, in the layout of
// json.Encoder with SetIndent("", "  ") on the whole list, so that
// `results --json` of a million tasks starts printing at once and holds
// one element in memory, not all.
type jsonList struct {
	w     io.Writer
	count int
	err   error
}

func (l *jsonList) add(v any) error {
	if l.err != nil {
		return l.err
	}
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		l.err = err
		return err
	}
	sep := ",\n  "
	if l.count == 0 {
		sep = "[\n  "
	}
	l.count++
	if _, err := io.WriteString(l.w, sep); err != nil {
		l.err = err
		return err
	}
	_, l.err = l.w.Write(b)
	return l.err
}

// close ends the list ("[]" when empty).
func (l *jsonList) close() error {
	if l.err != nil {
		return l.err
	}
	end := "\n]\n"
	if l.count == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(l.w, end)
	return err
}
