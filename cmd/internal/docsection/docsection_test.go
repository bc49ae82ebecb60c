package docsection

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(p, []byte("# T\n\n<!-- x:begin -->\nold\n<!-- x:end -->\n\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, "x", "new\n"); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, "y", "appended"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := "# T\n\n<!-- x:begin -->\nnew\n<!-- x:end -->\n\ntail\n\n<!-- y:begin -->\nappended\n<!-- y:end -->\n"
	if string(b) != want {
		t.Fatalf("got %q", b)
	}
	if got, err := Read(p, "x"); err != nil || got != "new" {
		t.Fatalf("Read: %q %v", got, err)
	}
	if _, err := Read(p, "z"); err == nil {
		t.Fatal("Read of a missing section: no error")
	}
}

func TestWriteRefusesOneMarker(t *testing.T) {
	p := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(p, []byte("<!-- x:begin -->\nold\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, "x", "new"); err == nil {
		t.Fatal("no error for a section with only its begin marker")
	}
}
