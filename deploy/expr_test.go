package deploy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// A small evaluator of GitHub Actions expressions, enough to decide which
// jobs of a workflow run for given variables: literals, context paths,
// ! == != < <= > >= && ||, parentheses and the status functions. Anything
// else is an error, so a workflow that outgrows it fails the test loudly
// instead of being judged wrongly. Semantics follow GitHub's documentation:
// && and || yield an operand, == coerces mismatched types to numbers and
// compares strings case-insensitively, unset vars are ''.

// exprEnv is what an expression can see.
type exprEnv struct {
	lookup func(path []string) any // context paths such as vars.DEPLOY_ENABLED
	status map[string]bool         // success(), failure(), cancelled() for this job
}

func evalExpr(src string, env exprEnv) (any, error) {
	p := &exprParser{src: src, env: env}
	if err := p.lex(); err != nil {
		return nil, err
	}
	v, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("expression %q: unexpected %q", src, p.toks[p.pos].text)
	}
	return v, nil
}

type exprTok struct {
	kind byte // 's' string, 'n' number, 'i' identifier or path, 'o' operator or punctuation
	text string
}

type exprParser struct {
	src  string
	toks []exprTok
	pos  int
	env  exprEnv
}

func (p *exprParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j++
						continue
					}
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return fmt.Errorf("expression %q: unterminated string", s)
			}
			p.toks = append(p.toks, exprTok{'s', b.String()})
			i = j + 1
		case strings.ContainsRune("=!<>", rune(c)) && i+1 < len(s) && s[i+1] == '=',
			c == '&' && i+1 < len(s) && s[i+1] == '&',
			c == '|' && i+1 < len(s) && s[i+1] == '|':
			p.toks = append(p.toks, exprTok{'o', s[i : i+2]})
			i += 2
		case strings.ContainsRune("!<>(),", rune(c)):
			p.toks = append(p.toks, exprTok{'o', s[i : i+1]})
			i++
		case c >= '0' && c <= '9' || c == '-':
			j := i + 1
			for j < len(s) && (s[j] == '.' || unicode.IsDigit(rune(s[j])) || s[j] == 'x' || s[j] >= 'a' && s[j] <= 'f') {
				j++
			}
			p.toks = append(p.toks, exprTok{'n', s[i:j]})
			i = j
		case unicode.IsLetter(rune(c)) || c == '_':
			j := i
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || strings.ContainsRune("_-.*", rune(s[j]))) {
				j++
			}
			p.toks = append(p.toks, exprTok{'i', s[i:j]})
			i = j
		default:
			return fmt.Errorf("expression %q: unsupported character %q", s, c)
		}
	}
	return nil
}

func (p *exprParser) peek(text string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == 'o' && p.toks[p.pos].text == text
}

func (p *exprParser) or() (any, error) {
	l, err := p.and()
	for err == nil && p.peek("||") {
		p.pos++
		var r any
		if r, err = p.and(); truthy(l) {
			continue
		}
		l = r
	}
	return l, err
}

func (p *exprParser) and() (any, error) {
	l, err := p.cmp()
	for err == nil && p.peek("&&") {
		p.pos++
		var r any
		if r, err = p.cmp(); !truthy(l) {
			continue
		}
		l = r
	}
	return l, err
}

func (p *exprParser) cmp() (any, error) {
	l, err := p.unary()
	for err == nil {
		var op string
		for _, o := range []string{"==", "!=", "<=", ">=", "<", ">"} {
			if p.peek(o) {
				op = o
			}
		}
		if op == "" {
			break
		}
		p.pos++
		var r any
		if r, err = p.unary(); err != nil {
			break
		}
		l = compare(op, l, r)
	}
	return l, err
}

func (p *exprParser) unary() (any, error) {
	if p.peek("!") {
		p.pos++
		v, err := p.unary()
		return !truthy(v), err
	}
	return p.primary()
}

func (p *exprParser) primary() (any, error) {
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("expression %q ends early", p.src)
	}
	t := p.toks[p.pos]
	p.pos++
	switch t.kind {
	case 's':
		return t.text, nil
	case 'n':
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, fmt.Errorf("expression %q: bad number %q", p.src, t.text)
		}
		return f, nil
	case 'o':
		if t.text != "(" {
			return nil, fmt.Errorf("expression %q: unexpected %q", p.src, t.text)
		}
		v, err := p.or()
		if err == nil && !p.peek(")") {
			err = fmt.Errorf("expression %q: missing )", p.src)
		}
		p.pos++
		return v, err
	}
	switch t.text {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if p.peek("(") {
		p.pos++
		if !p.peek(")") {
			return nil, fmt.Errorf("expression %q: function %s with arguments is not supported here", p.src, t.text)
		}
		p.pos++
		switch t.text {
		case "always":
			return true, nil
		case "success", "failure", "cancelled":
			return p.env.status[t.text], nil
		}
		return nil, fmt.Errorf("expression %q: function %s() is not supported here", p.src, t.text)
	}
	return p.env.lookup(strings.Split(t.text, ".")), nil
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0 && !math.IsNaN(v)
	case string:
		return v != ""
	}
	return true
}

func number(v any) float64 {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		if v {
			return 1
		}
		return 0
	case float64:
		return v
	case string:
		if strings.TrimSpace(v) == "" {
			return 0
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	return math.NaN()
}

func compare(op string, l, r any) bool {
	ls, lok := l.(string)
	rs, rok := r.(string)
	var c int
	switch {
	case lok && rok:
		c = strings.Compare(strings.ToLower(ls), strings.ToLower(rs))
	case l == nil && r == nil:
		c = 0
	default:
		ln, rn := number(l), number(r)
		if math.IsNaN(ln) || math.IsNaN(rn) {
			return op == "!="
		}
		switch {
		case ln < rn:
			c = -1
		case ln > rn:
			c = 1
		}
	}
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// TestExpr_FollowsGitHubSemantics pins the evaluator the opt-in check relies
// on to GitHub's documented rules (case-insensitive strings, number coercion,
// && and || yielding operands).
func TestExpr_FollowsGitHubSemantics(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"ON": "true", "OFF": "false", "ONE": "1"}
	env := exprEnv{
		lookup: func(p []string) any {
			if len(p) == 2 && p[0] == "vars" {
				return vars[p[1]]
			}
			return nil
		},
		status: map[string]bool{"success": true},
	}
	for src, want := range map[string]bool{
		"vars.ON == 'true'":                       true,
		"vars.ON == 'TRUE'":                       true,
		"vars.OFF == 'true'":                      false,
		"vars.UNSET == 'true'":                    false,
		"vars.UNSET != 'true'":                    true,
		"vars.UNSET == ''":                        true,
		"vars.ONE == 1":                           true,
		"vars.ON == true":                         false, // 'true' is NaN as a number
		"github.missing == ''":                    true,  // null and '' both coerce to 0
		"!vars.UNSET":                             true,
		"vars.ON && vars.OFF == 'false'":          true,
		"success() && (vars.OFF == 'true')":       false,
		"always() || failure()":                   true,
		"!(vars.ON == 'true' && vars.ONE == '1')": false,
		"'it''s' == 'IT''S'":                      true,
	} {
		v, err := evalExpr(src, env)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if truthy(v) != want {
			t.Errorf("%s = %v (truthy %v), want %v", src, v, truthy(v), want)
		}
	}
	for _, bad := range []string{"vars.ON ==", "contains(vars.ON, 'x')", "(vars.ON", "vars.ON == 'x"} {
		if _, err := evalExpr(bad, env); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}
