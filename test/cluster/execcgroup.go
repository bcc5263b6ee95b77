package main

// execcgroup.go enforces a container's CPU and memory limits with a cgroup of
// its own, when the harness may create cgroups (root, with the memory and cpu
// controllers of cgroup v1, or cgroup v2 with them delegated at its root): the
// memory limit is memory.limit_in_bytes / memory.max, so the kernel's OOM
// killer ends a container that exceeds it, which the harness reports as
// OOMKilled; the CPU limit is a CFS quota. Every container's cgroup lives under
// testcluster-<harness pid>, removed when the container ends; ones left by a
// harness that was killed are removed by the next harness.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

const cgroupBase = "/sys/fs/cgroup"

type cgroups struct {
	v2       bool
	memRoot  string // v1: .../memory/testcluster-PID; v2: .../testcluster-PID (both controllers)
	cpuRoot  string
	disabled string // why limits are not enforced, if they are not
}

// setupCgroups finds what this machine allows; it never fails the harness.
func setupCgroups() *cgroups {
	name := fmt.Sprintf("testcluster-%d", os.Getpid())
	cg := &cgroups{}
	if os.Geteuid() != 0 {
		cg.disabled = "the harness is not root"
		return cg
	}
	if _, err := os.Stat(filepath.Join(cgroupBase, "memory", "memory.limit_in_bytes")); err == nil {
		for _, ctl := range []string{"memory", "cpu"} {
			sweep(filepath.Join(cgroupBase, ctl))
		}
		mem, cpu := filepath.Join(cgroupBase, "memory", name), filepath.Join(cgroupBase, "cpu", name)
		if err := os.Mkdir(mem, 0o755); err != nil {
			cg.disabled = err.Error()
			return cg
		}
		cg.memRoot = mem
		if _, err := os.Stat(filepath.Join(cgroupBase, "cpu", "cpu.cfs_quota_us")); err == nil && os.Mkdir(cpu, 0o755) == nil {
			cg.cpuRoot = cpu
		}
		return cg
	}
	controllers, err := os.ReadFile(filepath.Join(cgroupBase, "cgroup.controllers"))
	if err != nil || !strings.Contains(string(controllers), "memory") {
		cg.disabled = "no cgroup memory controller"
		return cg
	}
	sweep(cgroupBase)
	root := filepath.Join(cgroupBase, name)
	if err := os.Mkdir(root, 0o755); err != nil {
		cg.disabled = err.Error()
		return cg
	}
	_ = os.WriteFile(filepath.Join(cgroupBase, "cgroup.subtree_control"), []byte("+memory +cpu"), 0o644)
	if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+memory +cpu"), 0o644); err != nil {
		_ = os.Remove(root)
		cg.disabled = "cannot delegate the memory and cpu controllers: " + err.Error()
		return cg
	}
	cg.v2, cg.memRoot, cg.cpuRoot = true, root, root
	return cg
}

// sweep removes the empty cgroups of harnesses that no longer run.
func sweep(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "testcluster-"))
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "testcluster-") || err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		removeTree(filepath.Join(dir, e.Name()))
	}
}

// removeTree removes a cgroup and its children (rmdir, deepest first).
func removeTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

func (cg *cgroups) enforced() bool { return cg != nil && cg.memRoot != "" }

// containerCgroup is one container instance's cgroup(s).
type containerCgroup struct {
	v2   bool
	dirs []string // memory dir first
}

// create makes the cgroup of one container instance with its limits; it
// returns the cgroup.procs files the init process joins. nil: no limits.
func (cg *cgroups) create(name string, res corev1.ResourceRequirements) (*containerCgroup, []string, error) {
	mem, hasMem := res.Limits[corev1.ResourceMemory]
	cpu, hasCPU := res.Limits[corev1.ResourceCPU]
	if !cg.enforced() || (!hasMem && !hasCPU) {
		return nil, nil, nil
	}
	out := &containerCgroup{v2: cg.v2}
	var procs []string
	write := func(dir, file, value string) error {
		return os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644)
	}
	if cg.v2 {
		dir := filepath.Join(cg.memRoot, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, nil, err
		}
		out.dirs = []string{dir}
		if hasMem {
			if err := write(dir, "memory.max", strconv.FormatInt(mem.Value(), 10)); err != nil {
				return out, nil, err
			}
			_ = write(dir, "memory.swap.max", "0")
		}
		if hasCPU {
			if err := write(dir, "cpu.max", fmt.Sprintf("%d 100000", max(cpu.MilliValue()*100, 1000))); err != nil {
				return out, nil, err
			}
		}
		return out, []string{filepath.Join(dir, "cgroup.procs")}, nil
	}
	dir := filepath.Join(cg.memRoot, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, nil, err
	}
	out.dirs = append(out.dirs, dir)
	procs = append(procs, filepath.Join(dir, "cgroup.procs"))
	if hasMem {
		if err := write(dir, "memory.limit_in_bytes", strconv.FormatInt(mem.Value(), 10)); err != nil {
			return out, nil, err
		}
	}
	if hasCPU && cg.cpuRoot != "" {
		cdir := filepath.Join(cg.cpuRoot, name)
		if err := os.Mkdir(cdir, 0o755); err != nil {
			return out, nil, err
		}
		out.dirs = append(out.dirs, cdir)
		procs = append(procs, filepath.Join(cdir, "cgroup.procs"))
		if err := write(cdir, "cpu.cfs_period_us", "100000"); err != nil {
			return out, nil, err
		}
		if err := write(cdir, "cpu.cfs_quota_us", strconv.FormatInt(max(cpu.MilliValue()*100, 1000), 10)); err != nil {
			return out, nil, err
		}
	}
	return out, procs, nil
}

// oomKilled reports whether the kernel's OOM killer acted in the cgroup.
func (c *containerCgroup) oomKilled() bool {
	if c == nil || len(c.dirs) == 0 {
		return false
	}
	file := "memory.oom_control"
	if c.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(c.dirs[0], file))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "oom_kill "); ok && strings.TrimSpace(n) != "0" {
			return true
		}
	}
	return false
}

func (c *containerCgroup) remove() {
	if c == nil {
		return
	}
	for _, d := range c.dirs {
		_ = os.Remove(d)
	}
}

func (cg *cgroups) cleanup() {
	if cg == nil {
		return
	}
	for _, d := range []string{cg.memRoot, cg.cpuRoot} {
		if d != "" {
			removeTree(d)
		}
	}
}
