package forecast

import (
	"cmp"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Candidates are the periods looked for, as Crane does: a day and a week.
var Candidates = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}

// Period is what DetectPeriod found.
type Period struct {
	// Steps is the period in samples; 0: none found.
	Steps int
	// Length is the period as a duration; 0: none found.
	Length time.Duration
	// Reason says why there is none, or how it was found, with the numbers.
	Reason string
}

// Found reports whether a period was found.
func (p Period) Found() bool { return p.Steps > 0 }

// Detection tuning, as Crane's pkg/prediction/dsp.
const (
	// shuffles of the series estimate how high a periodogram peak rises by
	// chance; a candidate's peak must beat the 99th percentile of their maxima.
	shuffles        = 100
	shuffleQuantile = 0.99
	// minAutocorrelation: the series must resemble itself one period later.
	minAutocorrelation = 0.3
	// maxGapShare: above this share of gaps, the shape is too unknown to trust.
	maxGapShare = 0.2
	// clipQuantile: samples beyond the 0.1 % and 99.9 % quantiles are clipped
	// to them before the test (outliers: a start-up spike, a bad scrape).
	clipQuantile = 0.001
)

// DetectPeriod looks for each candidate period in the series, longest
// history first needed: a candidate is found when the history holds at
// least two of it, the periodogram's power at its frequency beats the
// 99th percentile of the highest power of 100 shuffles of the series
// (what noise alone reaches), and the autocorrelation at its lag is a
// hill (higher than a tenth of a period either side) above 0.3. Of the
// candidates found, the one whose autocorrelation is highest wins; on a
// near tie (0.05) the shorter, which needs less history. seed draws the
// shuffles.
func DetectPeriod(s Series, candidates []time.Duration, seed uint64) Period {
	if s.Step <= 0 {
		return Period{Reason: "no period: the history has no step"}
	}
	s.Values = wholeUnits(s.Values, s.Step, candidates)
	n := len(s.Values)
	x, gapCount := filled(s.Values)
	if x == nil {
		return Period{Reason: fmt.Sprintf("no period: the history's %d samples are all gaps", n)}
	}
	if share := float64(gapCount) / float64(n); share > maxGapShare {
		return Period{Reason: fmt.Sprintf("no period: %.0f %% of the history is gaps (more than %.0f %%)", 100*share, 100*maxGapShare)}
	}
	var usable []time.Duration
	for _, c := range candidates {
		if c%s.Step == 0 && n >= 2*int(c/s.Step) {
			usable = append(usable, c)
		}
	}
	if len(usable) == 0 {
		return Period{Reason: fmt.Sprintf("reactive: %s of history holds fewer than two of any period looked for (%s)",
			time.Duration(n)*s.Step, durations(candidates))}
	}
	clip(x, clipQuantile)
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= float64(n)
	variance := 0.0
	for i := range x {
		x[i] -= mean
		variance += x[i] * x[i]
	}
	if variance/float64(n) < 1e-9*(mean*mean+1) {
		return Period{Reason: "no period: the demand is flat"}
	}

	fft := fourier.NewFFT(n)
	power := periodogram(fft, x, nil)
	threshold := shuffleThreshold(fft, x, seed)
	acf := autocorrelation(x)

	type found struct {
		steps int
		acf   float64
	}
	var hits []found
	var why []string
	for _, c := range usable {
		steps := int(c / s.Step)
		k := float64(n) / float64(steps) // the candidate's frequency bin
		peak := 0.0
		for _, b := range []int{int(math.Floor(k)), int(math.Ceil(k))} {
			if b >= 1 && b < len(power) {
				peak = max(peak, power[b])
			}
		}
		r := acf[steps]
		w := max(steps/10, 1)
		hill := r > acf[steps-w] && (steps+w >= len(acf) || r > acf[steps+w])
		switch {
		case peak <= threshold:
			why = append(why, fmt.Sprintf("%s: spectral peak %.3g below the shuffles' 99th percentile %.3g", c, peak, threshold))
		case !hill || r < minAutocorrelation:
			why = append(why, fmt.Sprintf("%s: autocorrelation %.2f not a hill above %.1f", c, r, minAutocorrelation))
		default:
			hits = append(hits, found{steps, r})
			why = append(why, fmt.Sprintf("%s: spectral peak %.3g above %.3g, autocorrelation %.2f", c, peak, threshold, r))
		}
	}
	if len(hits) == 0 {
		return Period{Reason: "no period: " + join(why)}
	}
	best := hits[0]
	for _, h := range hits[1:] {
		if h.acf > best.acf+0.05 {
			best = h
		}
	}
	return Period{Steps: best.steps, Length: time.Duration(best.steps) * s.Step,
		Reason: fmt.Sprintf("period %s: %s", time.Duration(best.steps)*s.Step, join(why))}
}

// wholeUnits keeps the last whole multiple of the shortest candidate
// (whole days): the FFT's length then has small prime factors only (a
// length with a large prime factor makes it quadratic), and every
// candidate's frequency falls on a bin.
func wholeUnits(values []float64, step time.Duration, candidates []time.Duration) []float64 {
	unit := 0
	for _, c := range candidates {
		if c%step == 0 && (unit == 0 || int(c/step) < unit) {
			unit = int(c / step)
		}
	}
	if unit == 0 || len(values) < unit {
		return values
	}
	return values[len(values)-len(values)/unit*unit:]
}

// periodogram returns |X_k|² for k in [0, n/2], reusing dst.
func periodogram(fft *fourier.FFT, x []float64, dst []complex128) []float64 {
	coeff := fft.Coefficients(dst, x)
	out := make([]float64, len(coeff))
	for k, c := range coeff {
		a := cmplx.Abs(c)
		out[k] = a * a
	}
	return out
}

// shuffleThreshold is the 99th percentile of the periodogram's highest
// peak (bin 0 aside) over shuffles of x: what noise with x's values reaches.
func shuffleThreshold(fft *fourier.FFT, x []float64, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	y := slices.Clone(x)
	coeff := make([]complex128, len(x)/2+1)
	peaks := make([]float64, shuffles)
	for i := range peaks {
		rng.Shuffle(len(y), func(a, b int) { y[a], y[b] = y[b], y[a] })
		coeff = fft.Coefficients(coeff, y)
		for _, c := range coeff[1:] {
			a := cmplx.Abs(c)
			peaks[i] = max(peaks[i], a*a)
		}
	}
	return quantile(peaks, shuffleQuantile)
}

// autocorrelation returns the unbiased autocorrelation of x (mean removed)
// at every lag below len(x), through the FFT (Wiener–Khinchin) with zero
// padding so the lags do not wrap.
func autocorrelation(x []float64) []float64 {
	n := len(x)
	m := 1
	for m < 2*n {
		m *= 2
	}
	padded := make([]float64, m)
	copy(padded, x)
	fft := fourier.NewFFT(m)
	coeff := fft.Coefficients(nil, padded)
	for k, c := range coeff {
		a := cmplx.Abs(c)
		coeff[k] = complex(a*a, 0)
	}
	raw := fft.Sequence(nil, coeff)
	out := make([]float64, n)
	if raw[0] == 0 {
		return out
	}
	var0 := raw[0] / float64(n)
	for lag := range out {
		out[lag] = raw[lag] / float64(n-lag) / var0
	}
	return out
}

// clip bounds x to its q and 1-q quantiles, in place.
func clip(x []float64, q float64) {
	lo, hi := quantile(x, q), quantile(x, 1-q)
	for i, v := range x {
		x[i] = min(max(v, lo), hi)
	}
}

// quantile is the q-quantile of values (linear interpolation), NaNs
// ignored; 0 when there is nothing.
func quantile(values []float64, q float64) float64 {
	s := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return 0
	}
	slices.SortFunc(s, cmp.Compare)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

func durations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.String())
	}
	return strings.Join(parts, ", ")
}

func join(parts []string) string { return strings.Join(parts, "; ") }
