package forecast

import (
	"fmt"
	"math"
	"time"
)

// Config tunes Choose.
type Config struct {
	// Candidates are the periods looked for (default Candidates: a day, a week).
	Candidates []time.Duration
	// Horizon is how far ahead a forecast is used: the time until the next
	// refresh plus the lead time. The backtest scores each forecaster at it.
	Horizon time.Duration
	// Every is how often a forecast is refreshed: the backtest makes one
	// forecast this far apart over the last period (default an hour).
	Every time.Duration
	// UnderWeight is how much more an under-forecast of paid demand costs
	// than an over-forecast of the same size (default 4: waiting paid pods
	// cost more than room left empty).
	UnderWeight float64
	// Quantile of the backtest's errors (actual - forecast) reported as the
	// band (default 0.9).
	Quantile float64
	// Seed draws the shuffles of the period test.
	Seed uint64
}

func (c Config) withDefaults() Config {
	if c.Candidates == nil {
		c.Candidates = Candidates
	}
	if c.Every <= 0 {
		c.Every = time.Hour
	}
	if c.Horizon <= 0 {
		c.Horizon = c.Every
	}
	if c.UnderWeight <= 0 {
		c.UnderWeight = 4
	}
	if c.Quantile <= 0 || c.Quantile >= 1 {
		c.Quantile = 0.9
	}
	return c
}

// Score is one forecaster's backtest.
type Score struct {
	Method Method
	// Error is the asymmetric loss over the last period, relative to the
	// demand: sum(w·|actual - forecast|) / sum(actual), w = UnderWeight
	// where the forecast was short, 1 where it was over.
	Error float64
	// Band is the Quantile of actual - forecast: add it to a forecast to be
	// short that rarely.
	Band float64
}

// Model is the forecaster chosen for a series, or none (reactive), and why.
type Model struct {
	Method Method
	Period Period
	// Error and Band are the chosen forecaster's backtest (zero for None).
	Error, Band float64
	// Scores are every forecaster's backtest, in Methods order (none when
	// there was no period to backtest).
	Scores []Score
	// Reason says in one sentence what was chosen and why.
	Reason string
}

// Reactive reports whether the model forecasts nothing: the budget reacts
// to the demand it sees.
func (m Model) Reactive() bool { return m.Method == None }

// Choose detects the series' period and backtests every forecaster on its
// last period: from an origin every Every, each forecasts Horizon ahead
// from what came before only, and is scored against what came. The lowest
// error wins. No period (or too little history for two) gives None, and so
// does None winning the backtest: no forecaster beat holding the last value.
func Choose(s Series, cfg Config) Model {
	cfg = cfg.withDefaults()
	period := DetectPeriod(s, cfg.Candidates, cfg.Seed)
	if !period.Found() {
		return Model{Method: None, Period: period, Reason: period.Reason}
	}
	p := period.Steps
	h := max(int(cfg.Horizon/s.Step), 1)
	every := max(int(cfg.Every/s.Step), 1)
	n := len(s.Values)
	var scores []Score
	for _, m := range Methods() {
		scores = append(scores, backtest(s.Values, forecasterOf(m), m, p, h, every, n-p, cfg))
	}
	best := scores[0]
	for _, sc := range scores[1:] {
		if sc.Error < best.Error {
			best = sc
		}
	}
	out := Model{Method: best.Method, Period: period, Error: best.Error, Band: best.Band, Scores: scores}
	if best.Method == None {
		out.Error, out.Band = 0, 0
		out.Reason = fmt.Sprintf("reactive: %s, but no forecaster beat the last value in the backtest (%s)", period.Reason, scoreList(scores))
		return out
	}
	out.Reason = fmt.Sprintf("%s over a %s period, backtest error %.1f %% (%s)", best.Method, period.Length, 100*best.Error, scoreList(scores))
	return out
}

// backtest scores f from origins every `every` samples, from `from` (at
// least one period of history before it) to the end.
func backtest(values []float64, f forecaster, m Method, p, h, every, from int, cfg Config) Score {
	n := len(values)
	var loss, total float64
	var errs []float64
	for o := max(from, p); o < n; o += every {
		past, _ := filled(values[:o])
		if past == nil || len(past) < p {
			continue
		}
		pp := p
		if len(past) < 2*p && m == HoltWinters {
			continue // it needs two periods to start
		}
		fc := f(past, pp, min(h, n-o))
		for i, v := range fc {
			a := values[o+i]
			if math.IsNaN(a) {
				continue
			}
			e := a - v
			errs = append(errs, e)
			if e > 0 {
				loss += cfg.UnderWeight * e
			} else {
				loss -= e
			}
			total += math.Abs(a)
		}
	}
	if total == 0 {
		return Score{Method: m, Error: math.Inf(1)}
	}
	return Score{Method: m, Error: loss / total, Band: quantile(errs, cfg.Quantile)}
}

// Forecast returns the model's forecast for the h steps after the end of
// s, from s alone. None holds the last known value.
func (m Model) Forecast(s Series, h int) ([]float64, error) {
	past, _ := filled(s.Values)
	if past == nil {
		return nil, fmt.Errorf("forecast: the history holds no sample")
	}
	p := m.Period.Steps
	if m.Method != None && len(past) < 2*p {
		return nil, fmt.Errorf("forecast: %s needs two periods (%d samples), the history holds %d", m.Method, 2*p, len(past))
	}
	return forecasterOf(m.Method)(past, p, h), nil
}

func scoreList(scores []Score) string {
	out := ""
	for i, s := range scores {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %.1f %%", s.Method, 100*s.Error)
	}
	return out
}
