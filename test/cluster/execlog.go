package main

// execlog.go writes an exec container's stdout and stderr as the CRI log that
// kwok's server serves (pods/log, kubectl logs), and keeps the last lines for
// a FallbackToLogsOnError termination message.

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// criLog writes a container's output in the CRI log format kwok reads.
type criLog struct {
	mu   sync.Mutex
	f    *os.File
	wg   sync.WaitGroup
	last []string
}

func newCRILog(path string) (*criLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &criLog{f: f}, nil
}

func (l *criLog) write(stream, tag string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	b.WriteString(time.Now().UTC().Format(time.RFC3339Nano))
	b.WriteString(" " + stream + " " + tag + " ")
	b.Write(line)
	b.WriteByte('\n')
	_, _ = l.f.Write(b.Bytes())
	if tag == "F" {
		l.last = append(l.last, string(line))
		if len(l.last) > fallbackLogLines {
			l.last = l.last[1:]
		}
	}
}

// pump copies one stream line by line; a line longer than 16KiB is split
// into partial ("P") records, as CRI runtimes do.
func (l *criLog) pump(r *os.File, stream string) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer r.Close()
		br := bufio.NewReaderSize(r, criMaxLineBytes)
		for {
			line, err := br.ReadSlice('\n')
			switch {
			case err == nil:
				l.write(stream, "F", bytes.TrimSuffix(line, []byte("\n")))
			case errors.Is(err, bufio.ErrBufferFull):
				l.write(stream, "P", line)
			default:
				if len(line) > 0 {
					l.write(stream, "F", line)
				}
				return
			}
		}
	}()
}

func (l *criLog) drain() { l.wg.Wait() }

func (l *criLog) close() {
	l.drain()
	l.f.Close()
}

// tail is the FallbackToLogsOnError message: the last lines, at most 2KiB.
func (l *criLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.last, "\n")
	if len(s) > fallbackLogBytes {
		s = s[len(s)-fallbackLogBytes:]
	}
	return s
}
