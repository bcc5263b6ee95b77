package podinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookPathUsesTheContainersPath(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "only-in-the-image")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := lookPath("only-in-the-image", []string{"HOME=/", "PATH=/nonexistent:" + dir})
	if err != nil || got != tool {
		t.Fatalf("lookPath = %q, %v; want %q", got, err, tool)
	}
	if _, err := lookPath("only-in-the-image", []string{"PATH=/usr/bin"}); err == nil || !strings.Contains(err.Error(), "executable file not found in $PATH") {
		t.Fatalf("err = %v, want the runtime's not-found message", err)
	}
	plain := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lookPath(plain, nil); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v, want permission denied for a file that is not executable", err)
	}
}

func TestMountsAreOrderedParentsFirst(t *testing.T) {
	if !(depth("/etc/dataworks") < depth("/etc/dataworks/steps")) || depth("/data/") != depth("/data") {
		t.Fatal("depth must count path components of the cleaned path")
	}
}
