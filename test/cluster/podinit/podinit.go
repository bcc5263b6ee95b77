// Package podinit is the first process of one exec-pod container: the part of
// a container runtime that must run inside the container's namespaces.
//
// The harness starts it (cmd/testcluster-podinit) as PID 1 of fresh mount,
// PID and UTS namespaces, with a parent-death signal. It reads a Spec, makes
// the mount paths real (bind mounts), binds the pod's /etc/hosts, mounts a
// private /proc, sets the hostname, then starts the container's command as
// the pod's user and stays behind as init: it forwards termination signals to
// the command, reaps orphans, and exits with the command's status (128+signal
// when it was killed). When it exits, or is killed because the harness died,
// the kernel kills every process left in the PID namespace.
package podinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mount is one bind mount made inside the container's mount namespace.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Spec is everything the init process needs; the harness writes it as JSON.
type Spec struct {
	Argv       []string `json:"argv"`
	Env        []string `json:"env"`
	Dir        string   `json:"dir,omitempty"`
	Hostname   string   `json:"hostname,omitempty"`
	HostsFile  string   `json:"hostsFile,omitempty"`
	Mounts     []Mount  `json:"mounts,omitempty"`
	Expose     []string `json:"expose,omitempty"`  // host paths the image provides, made reachable
	Cgroups    []string `json:"cgroups,omitempty"` // cgroup.procs files to join (limits)
	UID        *uint32  `json:"uid,omitempty"`
	GID        *uint32  `json:"gid,omitempty"`
	Groups     []uint32 `json:"groups,omitempty"`
	NoNewPrivs bool     `json:"noNewPrivs,omitempty"`
	MountProc  bool     `json:"mountProc,omitempty"`
	NiceLevel  int      `json:"nice,omitempty"`
}

// StartError is reported on the status pipe when the command cannot start;
// Reason follows the kubelet's vocabulary (StartError, CreateContainerError).
type StartError struct {
	Reason  string
	Message string
}

func (e *StartError) Error() string { return e.Reason + ": " + e.Message }

// Main runs the init process: specPath names the JSON spec, status is the
// pipe on which "ok" or "err REASON\tMESSAGE" is written once.
func Main(specPath string, status *os.File) int {
	// Handle termination signals from the start: until the command runs they
	// wait in the channel (an init process without a handler ignores them).
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	spec, err := readSpec(specPath)
	if err == nil {
		err = joinCgroups(spec.Cgroups)
	}
	if err == nil {
		err = prepare(spec)
	}
	var pid int
	if err == nil {
		pid, err = start(spec)
	}
	if err != nil {
		var se *StartError
		if !errors.As(err, &se) {
			se = &StartError{Reason: "StartError", Message: err.Error()}
		}
		fmt.Fprintf(status, "err %s\t%s\n", se.Reason, strings.ReplaceAll(se.Message, "\n", " "))
		status.Close()
		return 128
	}
	fmt.Fprintf(status, "ok %d\n", pid)
	status.Close()
	return supervise(pid, sigs)
}

// joinCgroups moves this process (and so the command it starts) into the
// container's cgroups; "0" names the writer in any PID namespace.
func joinCgroups(procs []string) error {
	for _, f := range procs {
		if err := os.WriteFile(f, []byte("0"), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(f), err)
		}
	}
	return nil
}

func readSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("spec %s: %w", path, err)
	}
	if len(s.Argv) == 0 {
		return nil, &StartError{"CreateContainerConfigError", "no command to run"}
	}
	return &s, nil
}

// prepare builds the container's view of the file system. It runs in the
// new mount namespace, so nothing here is seen by the host, except mount
// points that did not exist: they are created as empty directories (or empty
// files) on the host file system, as a runtime would create them in an image.
func prepare(s *Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	mounts := append([]Mount(nil), s.Mounts...)
	if s.HostsFile != "" {
		mounts = append(mounts, Mount{Source: s.HostsFile, Target: "/etc/hosts", ReadOnly: true})
	}
	// Parents before children, as runtimes order mounts.
	sort.SliceStable(mounts, func(i, j int) bool { return depth(mounts[i].Target) < depth(mounts[j].Target) })
	// Every source is opened before anything is mounted: a mount may hide
	// another's source (an emptyDir on /tmp over a data directory in /tmp).
	fds := make([]int, len(mounts))
	for i, m := range mounts {
		fd, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return &StartError{"CreateContainerError", fmt.Sprintf("volume source %s: %v", m.Source, err)}
		}
		defer unix.Close(fd)
		fds[i] = fd
	}
	hidden := map[string]bool{}
	for _, p := range s.Expose {
		if err := expose(p, hidden); err != nil {
			return &StartError{"CreateContainerError", err.Error()}
		}
	}
	// The image's own paths stay reachable under a volume mounted over a parent
	// (an emptyDir on /tmp over a checkout in /tmp): opened now, bound again after.
	under := map[string]int{}
	for _, p := range s.Expose {
		p = filepath.Clean(p)
		for _, m := range mounts {
			t := filepath.Clean(m.Target)
			if p == t || strings.HasPrefix(p, t+"/") {
				fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
				if err != nil {
					return &StartError{"CreateContainerError", fmt.Sprintf("expose %s: %v", p, err)}
				}
				defer unix.Close(fd)
				under[p] = fd
				break
			}
		}
	}
	for i, m := range mounts {
		if err := bind(m, fds[i]); err != nil {
			return &StartError{"CreateContainerError", err.Error()}
		}
	}
	for _, p := range s.Expose {
		fd, ok := under[filepath.Clean(p)]
		if !ok {
			continue
		}
		if err := bind(Mount{Source: p, Target: filepath.Clean(p), ReadOnly: true}, fd); err != nil {
			return &StartError{"CreateContainerError", "expose " + err.Error()}
		}
	}
	if s.MountProc {
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount /proc: %w", err)
		}
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	return nil
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// bind mounts the source opened as fd (O_PATH) on m.Target, creating the
// mount point (a directory, or an empty file for a file) if needed.
func bind(m Mount, fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("volume source %s: %w", m.Source, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Target, err)
		}
	} else if _, err := os.Stat(m.Target); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(m.Target), 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Target, err)
		}
		f, err := os.OpenFile(m.Target, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("mount point %s: %w", m.Target, err)
		}
		f.Close()
	}
	src := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(src, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", m.Target, err)
		}
	}
	return nil
}

// expose makes host path p reachable for any user although an ancestor is
// private (a virtualenv whose interpreter lives under /root, mode 0700): the
// highest such ancestor is covered with an empty tmpfs in this mount
// namespace, and p alone is bound back at its place, read-only.
func expose(p string, hidden map[string]bool) error {
	p = filepath.Clean(p)
	private := ""
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		if info, err := os.Stat(dir); err == nil && info.Mode().Perm()&0o001 == 0 {
			private = dir
		}
		if dir == "/" {
			break
		}
	}
	if private == "" {
		return nil
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("expose %s: %w", p, err)
	}
	defer unix.Close(fd)
	if !hidden[private] {
		if err := unix.Mount("tmpfs", private, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("expose %s: cover %s: %w", p, private, err)
		}
		hidden[private] = true
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("expose %s: %w", p, err)
	}
	src := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(src, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("expose %s: %w", p, err)
	}
	return unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

// lookPath resolves argv[0] against the container's PATH, not ours.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", err
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func executable(p string) error {
	info, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("exec: %q: %w", p, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return fmt.Errorf("exec: %q: permission denied", p)
	}
	return nil
}

func start(s *Spec) (int, error) {
	argv0, err := lookPath(s.Argv[0], s.Env)
	if err != nil {
		return 0, &StartError{"StartError", err.Error()}
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, &StartError{"CreateContainerError", fmt.Sprintf("working directory: %v", err)}
	}
	if s.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if s.NiceLevel != 0 {
		_ = unix.Setpriority(unix.PRIO_PROCESS, 0, s.NiceLevel)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if s.UID != nil {
		gid := uint32(0)
		if s.GID != nil {
			gid = *s.GID
		}
		attr.Credential = &syscall.Credential{Uid: *s.UID, Gid: gid, Groups: s.Groups}
	}
	p, err := os.StartProcess(argv0, s.Argv, &os.ProcAttr{
		Dir: dir, Env: s.Env, Files: []*os.File{null, os.Stdout, os.Stderr}, Sys: attr,
	})
	if err != nil {
		return 0, &StartError{"StartError", err.Error()}
	}
	return p.Pid, nil
}

// supervise forwards signals to the command, reaps every child (orphans in
// the namespace are re-parented to us) and returns the command's exit code.
func supervise(pid int, sigs chan os.Signal) int {
	go func() {
		for s := range sigs {
			_ = unix.Kill(pid, s.(syscall.Signal))
		}
	}()
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 255
		}
		if got != pid {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
}
