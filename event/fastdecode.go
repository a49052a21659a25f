package event

import "strconv"

// decodeFast parses the common shape of an event several times faster than
// encoding/json: lowercase keys of the contract, each at most once, ASCII
// strings without escapes, integers without fraction or exponent. Anything
// else (including every malformed input) returns ok=false, and Decode uses
// decodeJSON, which stays the definition of the contract. FuzzDecodeFast
// checks that whenever ok is true, decodeJSON accepts the input and
// returns the same event.
func decodeFast(b []byte) (ev Event, ok bool) {
	p := fastParser{b: b}
	p.ws()
	if !p.eat('{') {
		return ev, false
	}
	p.ws()
	if p.eat('}') {
		return ev, p.end()
	}
	var seen uint16
	for {
		key, ok := p.str()
		if !ok {
			return ev, false
		}
		f := fieldOf(key)
		if f < 0 || seen&(1<<f) != 0 {
			return ev, false // unknown (maybe a case variant) or repeated
		}
		seen |= 1 << f
		p.ws()
		if !p.eat(':') {
			return ev, false
		}
		p.ws()
		switch f {
		case fID, fApp, fFrom, fTo, fRemark:
			s, ok := p.str()
			if !ok {
				return ev, false
			}
			v := string(s)
			switch f {
			case fID:
				ev.ID = v
			case fApp:
				ev.App = v
			case fFrom:
				ev.From = v
			case fTo:
				ev.To = v
			case fRemark:
				ev.Remark = &v
			}
		case fSchema, fTS:
			n, ok := p.int()
			if !ok {
				return ev, false
			}
			if f == fTS {
				ev.TS = n
			} else {
				ev.Schema = int(n)
			}
		case fGroups:
			gs, ok := p.strings()
			if !ok {
				return ev, false
			}
			ev.Groups = &gs
		case fAttrs:
			m, ok := p.object()
			if !ok {
				return ev, false
			}
			ev.Attrs = m
		}
		p.ws()
		if p.eat('}') {
			return ev, p.end()
		}
		if !p.eat(',') {
			return ev, false
		}
		p.ws()
	}
}

const (
	fSchema = iota
	fID
	fApp
	fFrom
	fTo
	fRemark
	fGroups
	fAttrs
	fTS
)

func fieldOf(k []byte) int {
	switch string(k) {
	case "schema":
		return fSchema
	case "id":
		return fID
	case "app":
		return fApp
	case "from":
		return fFrom
	case "to":
		return fTo
	case "remark":
		return fRemark
	case "groups":
		return fGroups
	case "attrs":
		return fAttrs
	case "ts":
		return fTS
	}
	return -1
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end accepts only trailing whitespace.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// str reads a string of printable ASCII without escapes.
func (p *fastParser) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// int reads a JSON integer: an optional minus, then 0 or a non-zero digit
// and more digits, not followed by a fraction or an exponent.
func (p *fastParser) int() (int64, bool) {
	start := p.i
	p.eat('-')
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	if n == 0 || n > 1 && p.b[digits] == '0' {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return v, err == nil
}

// strings reads an array of strings.
func (p *fastParser) strings() ([]string, bool) {
	if !p.eat('[') {
		return nil, false
	}
	out := []string{}
	p.ws()
	if p.eat(']') {
		return out, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, string(s))
		p.ws()
		if p.eat(']') {
			return out, true
		}
		if !p.eat(',') {
			return nil, false
		}
		p.ws()
	}
}

// object reads an object of strings; a repeated key defers to the decoder.
func (p *fastParser) object() (map[string]string, bool) {
	if !p.eat('{') {
		return nil, false
	}
	m := map[string]string{}
	p.ws()
	if p.eat('}') {
		return m, true
	}
	for {
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		key := string(k)
		if _, dup := m[key]; dup {
			return nil, false
		}
		m[key] = string(v)
		p.ws()
		if p.eat('}') {
			return m, true
		}
		if !p.eat(',') {
			return nil, false
		}
		p.ws()
	}
}
