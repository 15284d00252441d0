package http

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// Timing cannot be asserted in a test, so the admin token's comparison is
// held to its shape instead: authenticate compares with
// subtle.ConstantTimeCompare and never with ==, !=, bytes.Equal or the like
// (which return at the first differing byte); only literals (ok, "", 1) may
// be compared plainly.
func TestAdmin_TokenIsComparedInConstantTime(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "admin.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var auth *ast.FuncDecl
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "authenticate" && fn.Recv != nil {
			auth = fn
		}
	}
	if auth == nil {
		t.Fatal("admin.go has no (*Admin).authenticate: point this test at the code that checks ADMIN_TOKEN")
	}
	literal := func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.BasicLit:
			return true
		case *ast.Ident:
			return x.Name == "nil" || x.Name == "true" || x.Name == "false"
		}
		return false
	}
	constantTime := false
	ast.Inspect(auth, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if (x.Op == token.EQL || x.Op == token.NEQ) && !literal(x.X) && !literal(x.Y) {
				t.Errorf("authenticate compares %s %s %s: not constant time", exprString(x.X), x.Op, exprString(x.Y))
			}
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok {
					switch pkg.Name + "." + sel.Sel.Name {
					case "subtle.ConstantTimeCompare":
						constantTime = true
					case "bytes.Equal", "bytes.Compare", "strings.Compare", "strings.EqualFold", "reflect.DeepEqual", "slices.Equal":
						t.Errorf("authenticate calls %s.%s: not constant time", pkg.Name, sel.Sel.Name)
					}
				}
			}
		}
		return true
	})
	if !constantTime {
		t.Error("authenticate does not call subtle.ConstantTimeCompare")
	}
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.CallExpr:
		return exprString(x.Fun) + "(...)"
	}
	return "expression"
}
