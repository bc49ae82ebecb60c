package main

import (
	"os"
	"regexp"
	"testing"
)

// TestDockerfileToolchain: the image builds with the Go release the Makefile
// pins (GOTOOLCHAIN), so `make build` and `make up` ship the same standard
// library, and the image stamps its version.
func TestDockerfileToolchain(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^export GOTOOLCHAIN \?= go(\S+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no `export GOTOOLCHAIN ?= goX.Y.Z` line")
	}
	d := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindSubmatch(df)
	if d == nil {
		t.Fatal("Dockerfile: no `ARG GO_VERSION=X.Y.Z` line")
	}
	if string(m[1]) != string(d[1]) {
		t.Errorf("Dockerfile GO_VERSION %s, Makefile GOTOOLCHAIN go%s: keep them equal", d[1], m[1])
	}
	if !regexp.MustCompile(`FROM golang:\$\{GO_VERSION\}-alpine`).Match(df) {
		t.Error("Dockerfile: the build stage must be FROM golang:${GO_VERSION}-alpine")
	}
	if !regexp.MustCompile(`-X main\.version=\$\{VERSION\}`).Match(df) {
		t.Error("Dockerfile: the binary must be stamped with -X main.version=${VERSION}")
	}
}
