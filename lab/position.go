package lab

// Lines of the tables and keys of a topology file, for messages.
//
// The TOML decoder cannot give them: its MetaData exposes no key
// positions, keeps one position per dotted key (so "nat.name" of every
// [[nat]] entry shares one), and there is no MetaData at all for a file
// it rejects, where [host] written for [[host]] still needs its line.
// So a small scanner reads the text once more.

import (
	"strconv"
)

// positions holds the line of each table header and key of a file that
// the TOML parser accepted: the parser keeps no line for keys inside an
// array of tables, so the text is scanned once more.
type positions struct {
	top    map[string]int       // top-level key or table name -> first line
	arrays map[string][]section // "nat", "host": one per [[...]] header (or [...] header)
	single map[string][]int     // "nat", "host": the lines of [nat] and [host] headers
}

type section struct {
	line int
	keys map[string]int // first part of a key (or sub-table name) -> first line
}

// section is the line of the i-th [[array]] entry (or of the key holding
// an inline array of tables), 0 if unknown.
func (ps *positions) section(array string, i int) int {
	if s := ps.arrays[array]; i < len(s) {
		return s[i].line
	}
	return ps.top[array]
}

// key is the line of key k in the i-th [[array]] entry, or of the entry.
func (ps *positions) key(array string, i int, k string) int {
	if s := ps.arrays[array]; i < len(s) {
		if l, ok := s[i].keys[k]; ok {
			return l
		}
		return s[i].line
	}
	return ps.top[array]
}

type scanner struct {
	src  []byte
	i    int
	line int
}

func setOnce(m map[string]int, k string, line int) {
	if _, ok := m[k]; !ok {
		m[k] = line
	}
}

func scanPositions(src []byte) *positions {
	ps := &positions{top: map[string]int{}, arrays: map[string][]section{}, single: map[string][]int{}}
	sc := &scanner{src: src, line: 1}
	cur := ps.top // where the keys that follow belong; nil: nowhere tracked
	for {
		sc.skipBlank()
		if sc.i >= len(sc.src) {
			return ps
		}
		start, line := sc.i, sc.line
		switch sc.src[sc.i] {
		case '#':
			sc.skipComment()
		case '[':
			double := sc.peek(1) == '['
			sc.i++
			if double {
				sc.i++
			}
			path := sc.keyPath()
			sc.skipComment()
			cur = nil
			if len(path) == 0 {
				break
			}
			setOnce(ps.top, path[0], line)
			if path[0] != keyNAT && path[0] != keyHost && path[0] != keyEvent {
				break
			}
			secs := ps.arrays[path[0]]
			if len(path) == 1 && !double {
				ps.single[path[0]] = append(ps.single[path[0]], line)
			}
			switch {
			case len(path) == 1:
				s := section{line: line, keys: map[string]int{}}
				ps.arrays[path[0]] = append(secs, s)
				cur = s.keys
			case len(path) > 1 && len(secs) > 0:
				setOnce(secs[len(secs)-1].keys, path[1], line)
			}
		default:
			path := sc.keyPath()
			sc.skipSpace()
			if sc.peek(0) == '=' {
				sc.i++
			}
			sc.value()
			if len(path) > 0 && cur != nil {
				setOnce(cur, path[0], line)
			}
		}
		if sc.i == start {
			sc.i++
		}
	}
}

func (sc *scanner) peek(k int) byte {
	if sc.i+k < len(sc.src) {
		return sc.src[sc.i+k]
	}
	return 0
}

func (sc *scanner) skipBlank() {
	for sc.i < len(sc.src) {
		switch sc.src[sc.i] {
		case '\n':
			sc.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		sc.i++
	}
}

func (sc *scanner) skipSpace() {
	for sc.i < len(sc.src) && (sc.src[sc.i] == ' ' || sc.src[sc.i] == '\t') {
		sc.i++
	}
}

// skipComment moves to the end of the line (not past the newline).
func (sc *scanner) skipComment() {
	for sc.i < len(sc.src) && sc.src[sc.i] != '\n' {
		sc.i++
	}
}

func isBareKeyByte(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '.', '=', '[', ']', '#', '"', '\'', ',', '{', '}':
		return false
	}
	return true
}

// keyPath reads a dotted key (bare or quoted parts).
func (sc *scanner) keyPath() []string {
	var path []string
	for {
		sc.skipSpace()
		var part string
		switch c := sc.peek(0); c {
		case '"', '\'':
			part = sc.quotedKey(c)
		default:
			st := sc.i
			for sc.i < len(sc.src) && isBareKeyByte(sc.src[sc.i]) {
				sc.i++
			}
			if sc.i == st {
				return path
			}
			part = string(sc.src[st:sc.i])
		}
		path = append(path, part)
		sc.skipSpace()
		if sc.peek(0) != '.' {
			return path
		}
		sc.i++
	}
}

func (sc *scanner) quotedKey(q byte) string {
	sc.i++
	st := sc.i
	for sc.i < len(sc.src) && sc.src[sc.i] != q && sc.src[sc.i] != '\n' {
		if q == '"' && sc.src[sc.i] == '\\' {
			sc.i++
		}
		sc.i++
	}
	end := min(sc.i, len(sc.src))
	raw := string(sc.src[st:end])
	if sc.peek(0) == q {
		sc.i++
	}
	if q == '"' {
		if s, err := strconv.Unquote(`"` + raw + `"`); err == nil {
			return s
		}
	}
	return raw
}

// value skips a value: to the end of its line, or of its last line when
// it spans several (arrays, inline tables, multi-line strings).
func (sc *scanner) value() {
	depth := 0
	for sc.i < len(sc.src) {
		switch c := sc.src[sc.i]; c {
		case '\n':
			if depth == 0 {
				return
			}
			sc.line++
			sc.i++
		case '#':
			sc.skipComment()
		case '"', '\'':
			if sc.peek(1) == c && sc.peek(2) == c {
				sc.multiline(c)
			} else {
				sc.quotedKey(c)
			}
		case '[', '{':
			depth++
			sc.i++
		case ']', '}':
			if depth > 0 {
				depth--
			}
			sc.i++
		default:
			sc.i++
		}
	}
}

// multiline skips a multi-line string (three quotes or three apostrophes), counting its lines.
func (sc *scanner) multiline(q byte) {
	sc.i += 3
	for sc.i < len(sc.src) {
		c := sc.src[sc.i]
		switch {
		case c == '\n':
			sc.line++
			sc.i++
		case c == '\\' && q == '"':
			sc.i++
			if sc.peek(0) == '\n' {
				sc.line++
			}
			sc.i++
		case c == q && sc.peek(1) == q && sc.peek(2) == q:
			sc.i += 3
			for extra := 0; extra < 2 && sc.peek(0) == q; extra++ {
				sc.i++
			}
			return
		default:
			sc.i++
		}
	}
}
