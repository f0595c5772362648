//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDemoDashboardInBrowser opens the demo's page in headless Chromium,
// lets the default scenario (seed-burst, opportunist beside hpa-writeup)
// play to its end, and checks what a newcomer needs to read it: the
// scenario and each strategy in words, the two strategies side by side on
// one time axis with simulate's numbers, units on the axes, time ticks, a
// legend that says what the fill line keeps free, memory left out while it
// never matters, and no jargon. It saves the screenshots docs/img holds
// (dashboard-desktop.png, full page at 1400 px; dashboard-phone.png, the
// top of the page at 390 px) in the test's folder.
func TestDemoDashboardInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: install Debian's chromium package (apt-get install chromium); .ci/run does")
	}
	addr := freeAddress(t)
	demo := exec.Command(binary, "demo", "--speed", "240", "--listen", addr)
	logPath := filepath.Join(testDir(t), "demo.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	demo.Stdout, demo.Stderr = logFile, logFile
	if err := demo.Start(); err != nil {
		t.Fatalf("starting opportunist demo: %v", err)
	}
	t.Cleanup(func() { _ = demo.Process.Kill(); _ = demo.Wait(); logFile.Close() })
	url := "http://" + addr + "/"
	waitFor(t, 10*time.Second, "the demo to serve its page", func(ctx context.Context) (bool, error) {
		code, _, err := httpGet(ctx, url)
		return code == 200, err
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // as root on a test machine
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1400, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	// What the page shows, read in one go once the scenario has played.
	const read = `(() => {
	  const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
	  const panels = [...document.querySelectorAll('#compare .panel')];
	  const box = (e) => e.getBoundingClientRect();
	  return {
	    intro: document.querySelector('#scenario-text').textContent,
	    legend: document.querySelector('#legend').textContent,
	    memoryNote: document.querySelector('#memory-note').textContent,
	    body: document.body.innerText,
	    panels: panels.map((p) => ({
	      view: p.dataset.view,
	      what: p.querySelector('.what').textContent,
	      summary: [...p.querySelectorAll('.summary > div')].map((d) => d.dataset.key + ': ' + d.querySelector('dd').textContent),
	      series: [...p.querySelectorAll('svg.chart.cpu path.series')].filter((e) => (e.getAttribute('d') || '').length > 20).map((e) => e.getAttribute('class')),
	      units: [...p.querySelectorAll('svg.chart.cpu text.axis-unit')].map((e) => e.textContent),
	      timeTicks: p.querySelectorAll('svg.chart.cpu text.tick-x').length,
	      waiting: p.querySelectorAll('svg.chart.cpu rect.waiting').length,
	      memoryShown: getComputedStyle(p.querySelector('svg.chart.memory')).display !== 'none',
	      top: box(p).top, bottom: box(p).bottom, left: box(p).left,
	    })),
	    decisions: document.querySelectorAll('.decisions li:not(.muted)').length,
	  };
	})()`
	type panelSeen struct {
		View, What         string
		Summary, Series    []string
		Units              []string
		TimeTicks, Waiting int
		MemoryShown        bool
		Top, Bottom, Left  float64
	}
	type pageSeen struct {
		Intro, Legend, MemoryNote, Body string
		Panels                          []panelSeen
		Decisions                       int
	}
	var wide, narrow pageSeen
	var wideShot, narrowShot []byte
	// The scenario has played and the charts hold its whole history: wait
	// on the page's own state, not on the clock.
	const played = `typeof state !== 'undefined' && state && state.finished && capacityHistory &&
	  capacityHistory.views.every((v) => v.points.length > 0 && v.points[v.points.length - 1].time === state.time) &&
	  document.querySelectorAll('#compare .panel svg.chart.cpu path.series').length > 0`
	err = chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			if _, err = chromedp.Poll[bool](played, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))(ctx, tg); err != nil {
				return fmt.Errorf("waiting for the scenario to play to its end: %w", err)
			}
			// drawCharts runs on the next history load too; read after it.
			if _, err = chromedp.Poll[bool](`document.querySelectorAll('#compare .panel svg.chart.cpu text.tick-x').length > 0`)(ctx, tg); err != nil {
				return err
			}
			if wide, err = chromedp.Evaluate[pageSeen](read)(ctx, tg); err != nil {
				return err
			}
			if wideShot, err = chromedp.FullScreenshot(100)(ctx, tg); err != nil {
				return err
			}
			if _, err = chromedp.EmulateViewport(390, 2000)(ctx, tg); err != nil {
				return err
			}
			// The page redraws its charts on resize: wait until the first
			// chart has the phone's width.
			if _, err = chromedp.Poll[bool](`document.querySelector('#compare svg.chart.cpu').getAttribute('viewBox').split(' ')[2] < 400`)(ctx, tg); err != nil {
				return fmt.Errorf("waiting for the charts to redraw at phone width: %w", err)
			}
			if narrow, err = chromedp.Evaluate[pageSeen](read)(ctx, tg); err != nil {
				return err
			}
			narrowShot, err = chromedp.CaptureScreenshot()(ctx, tg)
			return err
		}),
	)
	if err != nil {
		t.Fatalf("driving chromium on %s: %v (demo log: %s)", url, err, tail(logPath, 5))
	}
	dir := testDir(t)
	for name, img := range map[string][]byte{"dashboard-desktop.png": wideShot, "dashboard-phone.png": narrowShot} {
		small, err := smallPNG(img)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), small, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s (docs/img holds copies)", dir)

	if !strings.Contains(wide.Intro, "184 cores") || !strings.Contains(wide.Intro, "keeping 30 cores free for paid work") {
		t.Errorf("the introduction does not say what the cluster is: %q", wide.Intro)
	}
	if !strings.Contains(wide.Legend, "keep 30 cores free for paid work") {
		t.Errorf("the legend does not name the fill line in words: %q", wide.Legend)
	}
	if jargon := regexp.MustCompile(`\bline \d`).FindString(wide.Body); jargon != "" {
		t.Errorf("the page still says %q", jargon)
	}
	if len(wide.Panels) != 2 || wide.Panels[0].View != "opportunist" || wide.Panels[1].View != "hpa-writeup" {
		t.Fatalf("comparison panels = %+v, want opportunist and hpa-writeup", wide.Panels)
	}
	for _, p := range wide.Panels {
		if p.What == "" {
			t.Errorf("%s: no sentence says what the strategy is", p.View)
		}
		summary := strings.Join(p.Summary, "; ")
		for _, want := range []string{"harvest: ", "core-h", "of the instant law", "overshoot: ", "wait: ", " s", "direction: "} {
			if !strings.Contains(summary, want) {
				t.Errorf("%s: summary %q lacks %q", p.View, summary, want)
			}
		}
		if len(p.Series) < 4 {
			t.Errorf("%s: CPU chart draws %v, want paid, opportunistic, allocatable and the fill line", p.View, p.Series)
		}
		if !slices.Contains(p.Units, "cores") || !slices.Contains(p.Units, "minutes since the start") {
			t.Errorf("%s: axis units %v, want cores and minutes since the start", p.View, p.Units)
		}
		if p.TimeTicks < 5 {
			t.Errorf("%s: %d time ticks, want the scenario's minutes ticked (at least 5)", p.View, p.TimeTicks)
		}
		if p.MemoryShown {
			t.Errorf("%s: the memory chart is shown though memory is flat in seed-burst", p.View)
		}
	}
	// Side by side on a desktop, one above the other on a phone.
	if a, b := wide.Panels[0], wide.Panels[1]; a.Top != b.Top || b.Left <= a.Left {
		t.Errorf("desktop: panels at (%v, %v) and (%v, %v), want side by side", a.Left, a.Top, b.Left, b.Top)
	}
	if a, b := narrow.Panels[0], narrow.Panels[1]; b.Top < a.Bottom {
		t.Errorf("phone: second panel starts at %v, above the first's end %v; want them stacked", b.Top, a.Bottom)
	}
	// seed-burst: opportunist yields within seconds while paid pods wait,
	// and the chart marks it.
	if wide.Panels[0].Waiting < 1 {
		t.Errorf("opportunist's chart marks no paid wait; simulate reports one in seed-burst")
	}
	if !strings.Contains(wide.MemoryNote, "GiB") {
		t.Errorf("no note says why memory has no chart: %q", wide.MemoryNote)
	}
	if wide.Decisions < 1 {
		t.Errorf("the decision feeds have %d entries, want at least one", wide.Decisions)
	}
	if strings.Contains(tail(logPath, 20), "panic") {
		t.Errorf("the demo panicked: %s", tail(logPath, 20))
	}
}

// smallPNG re-encodes a screenshot with its 256 most frequent colours (a
// page has few: the palette, greys and text edges), each other pixel drawn
// in the nearest of them, at the best compression: a third of the size or
// less, for the copies in docs/img.
func smallPNG(data []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	counts := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colours := slices.Collect(maps.Keys(counts))
	slices.SortFunc(colours, func(a, b color.RGBA) int {
		if d := counts[b] - counts[a]; d != 0 {
			return d
		}
		return int(uint32(a.R)<<24|uint32(a.G)<<16|uint32(a.B)<<8|uint32(a.A)) - int(uint32(b.R)<<24|uint32(b.G)<<16|uint32(b.B)<<8|uint32(b.A))
	})
	pal := make(color.Palette, 0, 256)
	for _, c := range colours[:min(len(colours), 256)] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	draw.Draw(out, b, img, b.Min, draw.Src)
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
