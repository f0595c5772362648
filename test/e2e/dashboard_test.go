//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDemoDashboardInBrowser opens the demo's page in headless Chromium,
// waits for data, checks that both charts hold drawn series and the decision
// feed has entries, and saves screenshots (wide and phone-width) in the
// test's folder.
func TestDemoDashboardInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: install Debian's chromium package (apt-get install chromium); .ci/run does")
	}
	addr := freeAddress(t)
	demo := exec.Command(binary, "demo", "--speed", "120", "--listen", addr)
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
		chromedp.WindowSize(1400, 1300),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	count := func(js string) chromedp.Action[int] { return chromedp.Evaluate[int](js) }
	var seriesCPU, seriesMemory, decisions int
	var wide, narrow []byte
	err = chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#chart-cpu path.series.opp`)),
		chromedp.WaitVisible(chromedp.CSS(`#decisions li:not(.muted)`)),
		chromedp.Sleep(time.Second), // one more history load, so the charts hold several points
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			drawn := func(chart string) string {
				return `[...document.querySelectorAll('#` + chart + ` path.series')].filter(p => (p.getAttribute('d')||'').length > 20).length`
			}
			if seriesCPU, err = count(drawn("chart-cpu"))(ctx, tg); err != nil {
				return err
			}
			if seriesMemory, err = count(drawn("chart-memory"))(ctx, tg); err != nil {
				return err
			}
			if decisions, err = count(`document.querySelectorAll('#decisions li:not(.muted)').length`)(ctx, tg); err != nil {
				return err
			}
			if wide, err = chromedp.FullScreenshot(100)(ctx, tg); err != nil {
				return err
			}
			if _, err = chromedp.EmulateViewport(390, 844)(ctx, tg); err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond) // the page redraws its charts on resize
			narrow, err = chromedp.FullScreenshot(100)(ctx, tg)
			return err
		}),
	)
	if err != nil {
		t.Fatalf("driving chromium on %s: %v (demo log: %s)", url, err, tail(logPath, 5))
	}
	dir := testDir(t)
	for name, img := range map[string][]byte{"dashboard-wide.png": wide, "dashboard-narrow.png": narrow} {
		if err := os.WriteFile(filepath.Join(dir, name), img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	// Paid and opportunistic areas, allocatable, and the headroom line on CPU.
	if seriesCPU < 3 || seriesMemory < 3 {
		t.Errorf("charts hold %d (cpu) and %d (memory) drawn series, want at least 3 each", seriesCPU, seriesMemory)
	}
	if decisions < 1 {
		t.Errorf("the decision feed has %d entries, want at least one", decisions)
	}
	if strings.Contains(tail(logPath, 20), "panic") {
		t.Errorf("the demo panicked: %s", tail(logPath, 20))
	}
}
