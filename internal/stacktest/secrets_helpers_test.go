package stacktest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// secret is one configured credential the scanner looks for.
type secret struct {
	name  string // what it is, for reports (never the value)
	value string
}

// leakForm is one way a secret can appear in text.
type leakForm struct {
	secret string // secret.name
	form   string // "raw", "base64", "hex", …
	needle string
}

// minNeedle is the shortest fragment searched for: shorter ones would
// match by chance.
const minNeedle = 12

// leakForms returns every form of the secrets the scanner searches for:
// the value itself, every 16-byte window of it (a truncated echo), its
// URL query and path escapes, its hex encodings, and the base64 encodings
// (standard and URL alphabets) of the value at each of the three byte
// alignments it can have inside a longer encoded text.
func leakForms(secrets []secret) []leakForm {
	var out []leakForm
	for _, s := range secrets {
		v := s.value
		add := func(form, needle string) {
			if len(needle) < minNeedle {
				return
			}
			for _, f := range out {
				if f.secret == s.name && f.needle == needle {
					return
				}
			}
			out = append(out, leakForm{s.name, form, needle})
		}
		add("raw", v)
		for i := 0; i+16 <= len(v); i++ {
			add("fragment", v[i:i+16])
		}
		add("url query escape", url.QueryEscape(v))
		add("url path escape", url.PathEscape(v))
		add("url userinfo", url.UserPassword("u", v).String()[2:])
		add("hex", hex.EncodeToString([]byte(v)))
		add("HEX", strings.ToUpper(hex.EncodeToString([]byte(v))))
		for _, enc := range []struct {
			name string
			e    *base64.Encoding
		}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
			for off := range 3 {
				// The secret preceded by off bytes: the groups of 3 bytes that
				// hold only secret bytes encode the same wherever the secret
				// sits, as long as its offset is off modulo 3.
				b := append(make([]byte, off), v...)
				first := (off + 2) / 3     // first group made only of secret bytes
				last := (off + len(v)) / 3 // groups before this one end inside the secret
				encoded := enc.e.EncodeToString(b)
				if last > first {
					add(enc.name, encoded[first*4:last*4])
				}
			}
		}
	}
	return out
}

// leak is one secret found in one source.
type leak struct {
	source, secret, form, context string
}

func (l leak) String() string {
	return fmt.Sprintf("%s: %s (%s) in %q", l.source, l.secret, l.form, l.context)
}

// scanText returns where any form of a secret occurs in text. The context
// shown has the match itself masked, so a failure report does not spread
// the secret further than the text it was found in.
func scanText(source, text string, forms []leakForm) []leak {
	var out []leak
	seen := map[string]bool{}
	for _, f := range forms {
		i := strings.Index(text, f.needle)
		if i < 0 || seen[f.secret+"\x00"+source] {
			continue
		}
		seen[f.secret+"\x00"+source] = true
		lo, hi := max(0, i-60), min(len(text), i+len(f.needle)+60)
		ctx := text[lo:i] + "<" + f.form + " of " + f.secret + ">" + text[i+len(f.needle):hi]
		out = append(out, leak{source: source, secret: f.secret, form: f.form, context: ctx})
	}
	return out
}

// collector gathers every text a run produced, by source.
type collector struct {
	mu      sync.Mutex
	sources []string
	texts   map[string]*strings.Builder
}

func newCollector() *collector { return &collector{texts: map[string]*strings.Builder{}} }

func (c *collector) add(source, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.texts[source]
	if !ok {
		b = &strings.Builder{}
		c.texts[source] = b
		c.sources = append(c.sources, source)
	}
	b.WriteString(text)
	b.WriteByte('\n')
}

// writer returns an io.Writer appending to source.
func (c *collector) writer(source string) *collectorWriter {
	return &collectorWriter{c: c, source: source}
}

type collectorWriter struct {
	c      *collector
	source string
}

func (w *collectorWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	b, ok := w.c.texts[w.source]
	if !ok {
		b = &strings.Builder{}
		w.c.texts[w.source] = b
		w.c.sources = append(w.c.sources, w.source)
	}
	b.Write(p)
	return len(p), nil
}

func (c *collector) text(source string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.texts[source]; ok {
		return b.String()
	}
	return ""
}

// scan scans every source and returns the leaks and the bytes scanned per
// source.
func (c *collector) scan(forms []leakForm) ([]leak, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []leak
	sizes := map[string]int{}
	for _, s := range slices.Sorted(slices.Values(c.sources)) {
		t := c.texts[s].String()
		sizes[s] = len(t)
		out = append(out, scanText(s, t, forms)...)
	}
	return out, sizes
}

// dump writes each source to a file in dir (names made file-safe).
func (c *collector) dump(t *testing.T, dir string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.sources {
		name := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
				return r
			}
			return '_'
		}, s)
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(c.texts[s].String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("scanned texts written to %s", dir)
}
