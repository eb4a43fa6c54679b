package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// argv and env are JSON arrays of strings in the journal, so that SQLite's
// JSON functions read them. A byte that is not part of valid UTF-8 (file
// names are bytes on Linux) is written as a lone surrogate escape,
// \udc80..\udcff, as Python's "surrogateescape" does: valid UTF-8 never
// holds a surrogate, so the escape is unambiguous and parseStrings gives
// back exactly the bytes. Tools that replace lone surrogates show U+FFFD.

// surrogateEscape is the first of the escapes (byte 0x80 and up; a byte
// below 0x80 is always valid UTF-8 by itself).
const surrogateEscape = 0xdc00

var errJSONStrings = errors.New("want a JSON array of strings")

// parseStrings reads a JSON array of strings written by appendJSONStrings
// (or any JSON array of strings). Lone surrogate escapes \udc80..\udcff
// become the bytes 0x80..0xff; other lone surrogates become U+FFFD, as in
// encoding/json.
func parseStrings(b []byte) ([]string, error) {
	if len(b) == 0 || string(b) == "[]" || string(b) == "null" {
		return nil, nil
	}
	if !bytes.Contains(b, []byte(`\u`)) { // the common case
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return nil, err
		}
		if len(ss) == 0 {
			return nil, nil
		}
		return ss, nil
	}
	p := &jsonStrings{b: b}
	ss, err := p.array()
	if err != nil {
		return nil, fmt.Errorf("%w: %v at byte %d", errJSONStrings, err, p.i)
	}
	if len(ss) == 0 {
		return nil, nil
	}
	return ss, nil
}

type jsonStrings struct {
	b []byte
	i int
}

func (p *jsonStrings) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonStrings) array() ([]string, error) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return nil, errors.New("no '['")
	}
	p.i++
	ss := []string{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
	} else {
		for {
			p.space()
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			ss = append(ss, s)
			p.space()
			if p.i >= len(p.b) {
				return nil, errors.New("unterminated array")
			}
			c := p.b[p.i]
			p.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return nil, fmt.Errorf("unexpected %q", c)
			}
		}
	}
	p.space()
	if p.i != len(p.b) {
		return nil, errors.New("data after the array")
	}
	return ss, nil
}

// str reads one JSON string.
func (p *jsonStrings) str() (string, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", errors.New("no string")
	}
	p.i++
	var out []byte
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < 0x20:
			return "", errors.New("control character in a string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			break
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			out = p.appendRune(out, r)
		default:
			return "", fmt.Errorf("bad escape \\%c", e)
		}
	}
	return "", errors.New("unterminated string")
}

func (p *jsonStrings) hex4() (rune, error) {
	if p.i+4 > len(p.b) {
		return 0, errors.New("short \\u escape")
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("bad \\u escape %q", p.b[p.i:p.i+4])
	}
	p.i += 4
	return rune(v), nil
}

// appendRune appends the code point of a \u escape: a surrogate pair is
// one rune, \udc80..\udcff alone is a raw byte, any other lone surrogate
// is U+FFFD.
func (p *jsonStrings) appendRune(out []byte, r rune) []byte {
	if utf16.IsSurrogate(r) && r < 0xdc00 && p.i+6 <= len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
		save := p.i
		p.i += 2
		if r2, err := p.hex4(); err == nil {
			if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
				return utf8.AppendRune(out, pair)
			}
		}
		p.i = save
	}
	if r >= surrogateEscape+0x80 && r <= surrogateEscape+0xff {
		return append(out, byte(r-surrogateEscape))
	}
	return utf8.AppendRune(out, r) // a lone surrogate gives U+FFFD
}

// appendJSONStrings appends ss as a JSON array of strings (no HTML
// escaping; a byte that is not valid UTF-8 becomes \udc80..\udcff, see
// parseStrings).
func appendJSONStrings(buf []byte, ss []string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		for k := 0; k < len(s); {
			c := s[k]
			if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
				buf = append(buf, c)
				k++
				continue
			}
			if c >= utf8.RuneSelf {
				r, size := utf8.DecodeRuneInString(s[k:])
				if r == utf8.RuneError && size == 1 {
					buf = append(buf, '\\', 'u', 'd', 'c', hex[c>>4], hex[c&0xf])
				} else {
					buf = append(buf, s[k:k+size]...)
				}
				k += size
				continue
			}
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			k++
		}
		buf = append(buf, '"')
	}
	return append(buf, ']')
}
