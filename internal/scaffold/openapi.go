package scaffold

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// addOpenAPI inserts the resource's paths and schemas into
// internal/http/docs/openapi.json, keeping the document's key order and its
// two-space indentation.
func addOpenAPI(root string, d data) error {
	path := filepath.Join(root, "internal", "http", "docs", "openapi.json")
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	snippet, err := render("openapi.json.tmpl", d)
	if err != nil {
		return err
	}
	var parts struct {
		Paths   map[string]json.RawMessage `json:"paths"`
		Schemas map[string]json.RawMessage `json:"schemas"`
	}
	if err := json.Unmarshal(snippet, &parts); err != nil {
		return fmt.Errorf("openapi template: %w", err)
	}
	// Insert in a fixed order: list path first, then the item path; schemas as the test names them.
	for _, ins := range []struct {
		at   []string
		keys []string
		from map[string]json.RawMessage
	}{
		{[]string{"paths"}, []string{"/api/v1/" + d.Plural, "/api/v1/" + d.Plural + "/{id}"}, parts.Paths},
		{[]string{"components", "schemas"}, []string{d.Type, d.Type + "Create", d.Type + "Update", d.Type + "Page"}, parts.Schemas},
	} {
		for _, k := range ins.keys {
			if doc, err = insertMember(doc, ins.at, k, ins.from[k]); err != nil {
				return err
			}
		}
	}
	return writeIndented(path, doc)
}

// AddOpenAPIPath adds the path item at key to "paths" in
// internal/http/docs/openapi.json (a route written by hand).
func AddOpenAPIPath(root, key string, item json.RawMessage) error {
	path := filepath.Join(root, "internal", "http", "docs", "openapi.json")
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if doc, err = insertMember(doc, []string{"paths"}, key, item); err != nil {
		return err
	}
	return writeIndented(path, doc)
}

// writeIndented writes doc with the document's two-space layout.
func writeIndented(path string, doc []byte) error {
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return fmt.Errorf("openapi.json after insertion: %w", err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// insertMember adds "key": value as the last member of the object at path.
func insertMember(doc []byte, path []string, key string, value json.RawMessage) ([]byte, error) {
	if value == nil {
		return nil, fmt.Errorf("openapi template lacks %s", key)
	}
	end, err := objectEnd(doc, path)
	if err != nil {
		return nil, err
	}
	k, _ := json.Marshal(key)
	member := append(append(append([]byte(","), k...), ':'), value...)
	out := append([]byte{}, doc[:end]...)
	out = append(out, member...)
	return append(out, doc[end:]...), nil
}

// objectEnd returns the offset of the closing brace of the object at path.
func objectEnd(doc []byte, path []string) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	var stack []string // the keys leading to the current container
	lastKey := ""
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return 0, fmt.Errorf("openapi.json: object %v not found: %w", path, err)
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				stack = append(stack, lastKey)
				lastKey = ""
				continue
			}
			if v == '}' && equal(stack[1:], path) {
				return bytes.IndexByte(doc[start:], '}') + int(start), nil
			}
			stack = stack[:len(stack)-1]
			lastKey = ""
		case string:
			lastKey = ""
			if isKeyPosition(doc, dec.InputOffset()) {
				lastKey = v
			}
		default:
			lastKey = ""
		}
	}
}

// isKeyPosition reports whether a ':' follows offset (the string was a key).
func isKeyPosition(doc []byte, off int64) bool {
	for i := int(off); i < len(doc); i++ {
		switch doc[i] {
		case ' ', '\n', '\t', '\r':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
