package crowdsec

import (
	"fmt"
	"strings"
)

// expr is a parsed CrowdSec filter (the expr language), reduced to what
// the translation can use: and/or/not of field tests. Anything else
// parses as a "call" or an "other" node that translation reports.
type expr struct {
	op     string // and, or, not, ==, !=, in, not in, contains, startsWith, endsWith, matches, call, other
	args   []*expr
	field  string   // the field a test is on
	vals   []string // the literal(s) it compares with
	fn     string   // call: the function's name
	folded bool     // the test compares Upper()/Lower() of both sides
	src    string   // the source text of this node
}

type token struct {
	kind string // str, num, ident, op, eof
	text string
	pos  int
	end  int
}

// maxExpr bounds a filter's length and nesting: they come from files
// anyone can write.
const (
	maxExpr  = 16 << 10
	maxDepth = 64
)

func lex(src string) ([]token, error) {
	var out []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			var sb strings.Builder
			for j < len(src) && src[j] != c {
				if src[j] == '\\' && j+1 < len(src) && c != '`' {
					j++
				}
				sb.WriteByte(src[j])
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			out = append(out, token{"str", sb.String(), i, j + 1})
			i = j + 1
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			out = append(out, token{"num", src[i:j], i, j})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(src) && (src[j] == '_' || src[j] == '.' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			out = append(out, token{"ident", src[i:j], i, j})
			i = j
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch two {
			case "==", "!=", "&&", "||", "<=", ">=":
				out = append(out, token{"op", two, i, i + 2})
				i += 2
				continue
			}
			if strings.IndexByte("()[]{},!<>+-*/%#?:", c) < 0 {
				return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			out = append(out, token{"op", string(c), i, i + 1})
			i++
		}
	}
	return append(out, token{"eof", "", len(src), len(src)}), nil
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

// parseExpr parses a filter; an error says what is malformed.
func parseExpr(src string) (*expr, error) {
	if len(src) > maxExpr {
		return nil, fmt.Errorf("longer than %d bytes", maxExpr)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != "eof" {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.peek().text, p.peek().pos)
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *parser) is(texts ...string) bool {
	t := p.peek()
	if t.kind != "op" && t.kind != "ident" {
		return false
	}
	for _, x := range texts {
		if t.text == x {
			return true
		}
	}
	return false
}

func (p *parser) srcFrom(start int) string {
	end := p.toks[max(p.i-1, 0)].end
	if end < start {
		end = start
	}
	return strings.TrimSpace(p.src[start:end])
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	return nil
}

func (p *parser) or() (*expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	start := p.peek().pos
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	if !p.is("||", "or") {
		return l, nil
	}
	e := &expr{op: "or", args: []*expr{l}}
	for p.is("||", "or") {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		e.args = append(e.args, r)
	}
	e.src = p.srcFrom(start)
	return e, nil
}

func (p *parser) and() (*expr, error) {
	start := p.peek().pos
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	if !p.is("&&", "and") {
		return l, nil
	}
	e := &expr{op: "and", args: []*expr{l}}
	for p.is("&&", "and") {
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		e.args = append(e.args, r)
	}
	e.src = p.srcFrom(start)
	return e, nil
}

func (p *parser) unary() (*expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	start := p.peek().pos
	if p.is("!", "not") {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &expr{op: "not", args: []*expr{x}, src: p.srcFrom(start)}, nil
	}
	if p.is("(") {
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.is(")") {
			return nil, fmt.Errorf("missing ) at offset %d", p.peek().pos)
		}
		p.next()
		return x, nil
	}
	return p.comparison()
}

// operand is one side of a comparison.
type operand struct {
	field  string
	vals   []string
	list   bool
	fn     string // a function other than Upper/Lower
	folded bool
	bool   bool
}

func (p *parser) comparison() (*expr, error) {
	start := p.peek().pos
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := ""
	switch {
	case p.is("==", "!=", "in", "contains", "startsWith", "endsWith", "matches"):
		op = p.next().text
	case p.is("not"):
		p.next()
		if !p.is("in") {
			return nil, fmt.Errorf("want in after not at offset %d", p.peek().pos)
		}
		p.next()
		op = "not in"
	case p.is("<", ">", "<=", ">="):
		p.next()
		if _, err := p.operand(); err != nil {
			return nil, err
		}
		return &expr{op: "other", src: p.srcFrom(start)}, nil
	default:
		// A lone operand: a boolean function (any(), RegexpInFile()) or field.
		e := &expr{op: "other", src: p.srcFrom(start)}
		if l.fn != "" {
			e.op, e.fn = "call", l.fn
		}
		return e, nil
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	e := &expr{op: op, src: p.srcFrom(start)}
	switch {
	case l.fn != "" || r.fn != "":
		e.op, e.fn = "call", l.fn+r.fn
	case l.field != "" && r.field == "":
		e.field, e.vals, e.folded = l.field, r.vals, l.folded && (r.folded || caseFolded(r.vals))
		if r.list != (op == "in" || op == "not in") {
			e.op = "other"
		}
	case r.field != "" && l.field == "" && (op == "==" || op == "!="):
		e.field, e.vals = r.field, l.vals
	default:
		e.op = "other"
	}
	return e, nil
}

// caseFolded reports whether literals compared with Upper(field) or
// Lower(field) are already in one case: the test then ignores case.
func caseFolded(vs []string) bool {
	for _, v := range vs {
		if v != strings.ToUpper(v) && v != strings.ToLower(v) {
			return false
		}
	}
	return true
}

func (p *parser) operand() (operand, error) {
	if err := p.enter(); err != nil {
		return operand{}, err
	}
	defer func() { p.depth-- }()
	t := p.next()
	switch t.kind {
	case "str", "num":
		return operand{vals: []string{t.text}}, nil
	case "ident":
		switch t.text {
		case "true", "false":
			return operand{vals: []string{t.text}, bool: true}, nil
		}
		if !p.is("(") {
			return operand{field: t.text}, nil
		}
		p.next()
		if t.text == "Upper" || t.text == "Lower" {
			in, err := p.operand()
			if err != nil {
				return operand{}, err
			}
			if !p.is(")") {
				return operand{}, fmt.Errorf("missing ) after %s( at offset %d", t.text, p.peek().pos)
			}
			p.next()
			in.folded = true
			return in, nil
		}
		if err := p.skipBalanced(")"); err != nil {
			return operand{}, err
		}
		return operand{fn: t.text}, nil
	case "op":
		if t.text == "[" {
			var o operand
			o.list = true
			for !p.is("]") {
				v := p.next()
				if v.kind != "str" && v.kind != "num" {
					if v.kind == "eof" {
						return operand{}, fmt.Errorf("missing ] at offset %d", v.pos)
					}
					return operand{fn: "list of non-literals"}, p.skipBalanced("]")
				}
				o.vals = append(o.vals, v.text)
				if p.is(",") {
					p.next()
				}
			}
			p.next()
			return o, nil
		}
		if t.text == "(" {
			in, err := p.operand()
			if err != nil {
				return operand{}, err
			}
			if !p.is(")") {
				return operand{}, fmt.Errorf("missing ) at offset %d", p.peek().pos)
			}
			p.next()
			return in, nil
		}
	}
	if t.kind == "eof" {
		return operand{}, fmt.Errorf("the expression ends early")
	}
	return operand{}, fmt.Errorf("unexpected %q at offset %d", t.text, t.pos)
}

// skipBalanced consumes tokens up to the closer matching the opener just
// consumed, whatever is inside (closures, nested calls).
func (p *parser) skipBalanced(closer string) error {
	depth := 1
	for {
		t := p.next()
		switch {
		case t.kind == "eof":
			return fmt.Errorf("missing %s at offset %d", closer, t.pos)
		case t.kind == "op" && (t.text == "(" || t.text == "[" || t.text == "{"):
			depth++
		case t.kind == "op" && (t.text == ")" || t.text == "]" || t.text == "}"):
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}
