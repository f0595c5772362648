package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procRecord identifies a process we started. The pid alone is not enough:
// after a reboot or a long time the pid may belong to someone else, so a
// record only matches a process with the same start time and executable.
type procRecord struct {
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"startTicks"` // field 22 of /proc/<pid>/stat
	Exe        string    `json:"exe"`        // argv[0] we started it with
	Started    time.Time `json:"started"`
}

// runState is the pid file: the settings the running cluster was started
// with and the processes it consists of.
type runState struct {
	Settings settings              `json:"settings"`
	Procs    map[string]procRecord `json:"procs"`
	// HPA overrides the controller-manager's HPA flags (`hpa`).
	HPA *hpaFlags `json:"hpa,omitempty"`
}

func loadRunState(p paths) (*runState, error) {
	data, err := os.ReadFile(p.pidFile())
	if errors.Is(err, os.ErrNotExist) {
		return &runState{Procs: map[string]procRecord{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var st runState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s is corrupt (%v); stop the processes listed in it by hand and delete it", p.pidFile(), err)
	}
	if st.Procs == nil {
		st.Procs = map[string]procRecord{}
	}
	return &st, nil
}

// save writes the pid file, or removes it when no process is left.
func (st *runState) save(p paths) error {
	if len(st.Procs) == 0 {
		err := os.Remove(p.pidFile())
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(p.pidFile(), append(data, '\n'), 0o644)
}

// anyAlive reports whether any recorded process is still running.
func (st *runState) anyAlive() bool {
	for _, r := range st.Procs {
		if r.alive() {
			return true
		}
	}
	return false
}

// procStat returns the state letter and start time of a process.
func procStat(pid int) (state byte, startTicks uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(data)
}

// parseProcStat parses /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may contain spaces or parentheses, so fields are counted
// from the last ')'.
func parseProcStat(data []byte) (state byte, startTicks uint64, err error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	startTicks, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], startTicks, err
}

// alive reports whether the recorded process is still the one we started
// and has not exited (a zombie counts as exited).
func (r procRecord) alive() bool {
	state, start, err := procStat(r.PID)
	if err != nil || state == 'Z' || state == 'X' || start != r.StartTicks {
		return false
	}
	return procArgv0(r.PID) == r.Exe
}

// procArgv0 returns the first word of a process's command line, or "".
func procArgv0(pid int) string {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return string(argv0)
}

// startProcess starts exe in its own session (so it outlives `go run` and
// does not get the terminal's Ctrl-C), with output appended to logPath.
func startProcess(exe string, args, extraEnv []string, logPath string) (procRecord, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return procRecord{}, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return procRecord{}, err
	}
	defer logFile.Close() // the child has its own copy
	fmt.Fprintf(logFile, "\n===== %s: %s %s\n", time.Now().Format(time.RFC3339), exe, strings.Join(args, " "))

	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return procRecord{}, err
	}
	pid := cmd.Process.Pid
	// Not waited for: the process must outlive us. Once we exit it is
	// reparented and reaped by init; until then an early exit shows up as
	// a zombie, which alive() treats as dead.
	_ = cmd.Process.Release()
	// cmd.Start returns while execve is still finishing: for a moment
	// /proc/<pid>/cmdline is empty. Wait for the new command line so the
	// first alive() check does not mistake that for a dead process.
	for deadline := time.Now().Add(2 * time.Second); procArgv0(pid) != exe && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	_, start, err := procStat(pid)
	if err != nil || procArgv0(pid) != exe {
		return procRecord{}, &detailedError{
			msg:    fmt.Sprintf("%s exited immediately; log: %s (last 20 lines below)", filepath.Base(exe), logPath),
			detail: tailFile(logPath, 20),
		}
	}
	return procRecord{PID: pid, StartTicks: start, Exe: exe, Started: time.Now()}, nil
}

// stopProcess sends SIGTERM to the process group of r, waits for it to
// exit, and escalates to SIGKILL. It never signals a pid that is no longer
// the recorded process.
func stopProcess(r procRecord, grace time.Duration) error {
	if !r.alive() {
		return nil
	}
	// The process leads its own session and group (Setsid), so -pid also
	// reaches anything it forked.
	_ = syscall.Kill(-r.PID, syscall.SIGTERM)
	if waitExit(r, grace) {
		return nil
	}
	if !r.alive() {
		return nil
	}
	_ = syscall.Kill(-r.PID, syscall.SIGKILL)
	if waitExit(r, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("pid %d (%s) did not exit after SIGKILL", r.PID, filepath.Base(r.Exe))
}

func waitExit(r procRecord, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !r.alive() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return !r.alive()
}

// lockHandle keeps the state lock file open: a collected *os.File would
// close the descriptor and drop the lock.
var lockHandle *os.File

// lockState serialises commands that change the cluster (two `up`s from
// parallel test packages must not both start an etcd). The lock is released
// when the process exits.
func lockState(p paths) error {
	if lockHandle != nil {
		return nil // already held by this process (restart = stop + start)
	}
	if err := os.MkdirAll(p.state, 0o755); err != nil {
		return err
	}
	f, err := flock(p.lockFile(), "another hack/cluster command on "+p.state)
	lockHandle = f
	return err
}

// flock takes an exclusive lock on path, saying what it waits for if the
// lock is held. Closing the file releases the lock.
func flock(path, holder string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return f, nil
	}
	fmt.Printf("waiting for %s...\n", holder)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
