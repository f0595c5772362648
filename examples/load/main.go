// Command load sends the write-up demo's traffic: GET requests to one URL
// (the sample app's) at a steady rate, or along a profile of steps, so that
// the app's http_requests_total rises and falls and its autoscaler has
// something real to follow.
//
//	load --target http://127.0.0.1:8081/ --rate 8.25 [--duration 2m]
//	load --target http://127.0.0.1:8081/ --steps 0.75:30s,8.25:1m,0.75:1m
//
// A step RATE:DURATION sends RATE requests a second (0 is a pause) for
// DURATION. The load is open-loop: request i of a step leaves at
// start + i/RATE whatever the answers before it, each in its own goroutine,
// so a slow app does not lower the rate it is offered (at most
// --max-in-flight wait at once; a request due beyond that is counted as
// skipped, not queued). It prints each step as it starts and, every
// --report-interval, what it sent and how the answers went; SIGINT or
// SIGTERM stops it with a summary. Only the standard library: it builds
// anywhere Go does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// step is one stretch of steady load; Duration 0 runs until stopped.
type step struct {
	Rate     float64 // requests a second
	Duration time.Duration
}

func (s step) String() string {
	d := "until stopped"
	if s.Duration > 0 {
		d = "for " + s.Duration.String()
	}
	return fmt.Sprintf("%g req/s %s", s.Rate, d)
}

// parseSteps reads "RATE:DURATION,RATE:DURATION,...".
func parseSteps(s string) ([]step, error) {
	var steps []step
	for i, part := range strings.Split(s, ",") {
		r, d, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("--steps: step %d %q is not RATE:DURATION (e.g. 8.25:1m)", i+1, part)
		}
		rate, err := strconv.ParseFloat(r, 64)
		if err != nil || rate < 0 {
			return nil, fmt.Errorf("--steps: step %d: rate %q is not a number of requests a second >= 0", i+1, r)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return nil, fmt.Errorf("--steps: step %d: duration %q is not a positive duration (e.g. 30s, 1m)", i+1, d)
		}
		steps = append(steps, step{Rate: rate, Duration: dur})
	}
	return steps, nil
}

type options struct {
	Target         string
	Rate           float64
	Duration       time.Duration
	Steps          string
	ReportInterval time.Duration
	Timeout        time.Duration
	MaxInFlight    int
}

func defaultOptions() options {
	return options{Target: "http://127.0.0.1:8080/", Rate: 1, ReportInterval: 5 * time.Second, Timeout: 5 * time.Second, MaxInFlight: 100}
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Target, "target", o.Target, "URL to GET (the sample app's; any path is load)")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "requests a second, when --steps is not given")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long to send at --rate; 0 runs until SIGINT/SIGTERM")
	fs.StringVar(&o.Steps, "steps", o.Steps, "a load profile RATE:DURATION,... (e.g. 0.75:30s,8.25:1m,0.75:1m); replaces --rate and --duration")
	fs.DurationVar(&o.ReportInterval, "report-interval", o.ReportInterval, "how often to print what was sent")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long one request may take")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", o.MaxInFlight, "most requests waiting for an answer at once")
}

// plan validates the options, every problem at once, and returns the steps
// they describe.
func (o options) plan(set map[string]bool) ([]step, error) {
	var errs []error
	if u, err := url.Parse(o.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--target %q is not an http(s) URL (e.g. http://127.0.0.1:8080/)", o.Target))
	}
	var steps []step
	if o.Steps != "" {
		if set["rate"] || set["duration"] {
			errs = append(errs, errors.New("--steps replaces --rate and --duration: give one or the other"))
		}
		s, err := parseSteps(o.Steps)
		if err != nil {
			errs = append(errs, err)
		}
		steps = s
	} else {
		if o.Rate < 0 {
			errs = append(errs, fmt.Errorf("--rate %g must be >= 0", o.Rate))
		}
		if o.Duration < 0 {
			errs = append(errs, fmt.Errorf("--duration %s must be >= 0 (0 runs until stopped)", o.Duration))
		}
		steps = []step{{Rate: o.Rate, Duration: o.Duration}}
	}
	if o.ReportInterval <= 0 {
		errs = append(errs, fmt.Errorf("--report-interval %s must be positive", o.ReportInterval))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s must be positive", o.Timeout))
	}
	if o.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("--max-in-flight %d must be at least 1", o.MaxInFlight))
	}
	return steps, errors.Join(errs...)
}

// counts are what happened to the requests so far.
type counts struct {
	sent, ok, failed, skipped atomic.Int64
}

type snapshot struct{ sent, ok, failed, skipped int64 }

func (c *counts) snapshot() snapshot {
	return snapshot{c.sent.Load(), c.ok.Load(), c.failed.Load(), c.skipped.Load()}
}

// dueAt is when request i of a step at rate leaves, after the step starts:
// on a fixed grid, so a late timer is caught up and the mean rate holds.
func dueAt(i int64, rate float64) time.Duration {
	return time.Duration(float64(i) / rate * float64(time.Second))
}

// loader sends the requests.
type loader struct {
	target   string
	client   *http.Client
	inFlight chan struct{}
	counts   counts
	wg       sync.WaitGroup
	lastErr  atomic.Value // string: the latest failure, for the report
}

func (l *loader) send(ctx context.Context) {
	select {
	case l.inFlight <- struct{}{}:
	default:
		l.counts.skipped.Add(1)
		return
	}
	l.counts.sent.Add(1)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.inFlight }()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.target, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = l.client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
		}
		if err != nil {
			l.counts.failed.Add(1)
			l.lastErr.Store(err.Error())
			return
		}
		l.counts.ok.Add(1)
	}()
}

// runStep sends one step's requests on its grid until it ends or ctx does.
func (l *loader) runStep(ctx context.Context, s step) {
	start := time.Now()
	var end <-chan time.Time
	if s.Duration > 0 {
		t := time.NewTimer(s.Duration)
		defer t.Stop()
		end = t.C
	}
	if s.Rate == 0 { // a pause
		select {
		case <-ctx.Done():
		case <-end:
		}
		return
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		at := dueAt(i, s.Rate)
		if s.Duration > 0 && at >= s.Duration {
			select { // the last request is out: wait for the step's end
			case <-ctx.Done():
			case <-end:
			}
			return
		}
		timer.Reset(time.Until(start.Add(at)))
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-timer.C:
		}
		l.send(ctx)
	}
}

func report(w io.Writer, elapsed time.Duration, prev, cur snapshot, interval time.Duration, lastErr string) {
	line := fmt.Sprintf("%7.1fs sent %d (%.2f req/s), ok %d, failed %d, skipped %d",
		elapsed.Seconds(), cur.sent-prev.sent, float64(cur.sent-prev.sent)/interval.Seconds(), cur.ok-prev.ok, cur.failed-prev.failed, cur.skipped-prev.skipped)
	if cur.failed > prev.failed && lastErr != "" {
		line += "; last error: " + lastErr
	}
	fmt.Fprintln(w, line)
}

// run sends steps to the target, printing to w, until the last step ends
// or ctx does; it waits for the requests in flight.
func run(ctx context.Context, o options, steps []step, out io.Writer) snapshot {
	w := &syncWriter{w: out} // the report and the steps print from two goroutines
	l := &loader{
		target:   o.Target,
		client:   &http.Client{Timeout: o.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: o.MaxInFlight}},
		inFlight: make(chan struct{}, o.MaxInFlight),
	}
	start := time.Now()
	done := make(chan struct{})
	reported := make(chan struct{})
	go func() { // the periodic report
		defer close(reported)
		tick := time.NewTicker(o.ReportInterval)
		defer tick.Stop()
		var prev snapshot
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			cur := l.counts.snapshot()
			msg, _ := l.lastErr.Load().(string)
			report(w, time.Since(start), prev, cur, o.ReportInterval, msg)
			prev = cur
		}
	}()
	for i, s := range steps {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(w, "%7.1fs step %d/%d: %s to %s\n", time.Since(start).Seconds(), i+1, len(steps), s, o.Target)
		l.runStep(ctx, s)
	}
	l.wg.Wait()
	close(done)
	<-reported
	total := l.counts.snapshot()
	el := time.Since(start)
	fmt.Fprintf(w, "%7.1fs done: sent %d (%.2f req/s on average), ok %d, failed %d, skipped %d\n",
		el.Seconds(), total.sent, float64(total.sent)/el.Seconds(), total.ok, total.failed, total.skipped)
	return total
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func main() {
	o := defaultOptions()
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is one line, not the usage
	o.addFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Println("usage: load --target URL [--rate R] [--duration D] | --steps R:D,R:D,... [flags]")
			fs.PrintDefaults()
			return
		}
		fail(err)
	}
	if fs.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	steps, err := o.plan(set)
	if err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	run(ctx, o, steps, os.Stdout)
}

// fail prints err on one line (errors.Join's lines joined) and exits 1.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "load:", strings.ReplaceAll(err.Error(), "\n", "; "))
	os.Exit(1)
}
