package main

import (
	"fmt"
	"strings"
)

// markdown renders res as results/cnn.md: a header saying how and where it
// was measured, then the timing table, the per-model table, the peak-RSS
// table and any failures.
func markdown(res *result) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mi := res.Machine
	where := fmt.Sprintf("%s; %s, nproc %d, %s; git %s; load average (1 min) %.2f at the start, %.2f at the end",
		res.Date, mi.CPU, mi.NProc, mi.GoVersion, orDash(res.Git), res.LoadAvg[0], res.LoadAvg[1])

	if len(res.Runs) > 0 {
		threads := fmt.Sprintf("%d intra-op thread", res.ORTThreads)
		if res.ORTThreads == 0 {
			threads = "its default intra-op pool"
		} else if res.ORTThreads > 1 {
			threads += "s"
		}
		p("Whole CNNs at batch 1: aiaas nn/graph (onnx.Convert, then graph.ReadArtifact) vs ONNX Runtime %s "+
			"(CPU provider, %s, 1 inter-op thread, graph optimizations: all), one process per GOMAXPROCS; "+
			"%d interleaved rounds in a rotating order after %d warm-up runs, one Run per sample on preallocated tensors; "+
			"outputs checked against PyTorch's and each other within %g · max(1, max |PyTorch|). "+
			"%s. Single-core peak %.1f GFLOP/s: the best n³ SGEMM of nn/kernels at GOMAXPROCS=1 and of ONNX Runtime's MLAS on one thread; "+
			"at GOMAXPROCS=2 aiaas' kernels may use both cores, ORT keeps one thread.\n\n",
			res.ORTVersion, threads, res.Rounds, res.Warmup, res.TolRel, where, res.PeakGFLOPs)
		p("| GOMAXPROCS | model | input | aiaas median ms | aiaas p99 ms | ORT median ms | ORT p99 ms | aiaas / ORT | aiaas GFLOP/s | %% of 1-core peak | ORT GFLOP/s | %% of 1-core peak | aiaas allocs / run |\n")
		p("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range res.Runs {
			for _, w := range r.Rows {
				p("| %d | %s | %s | ", r.GOMAXPROCS, w.Model, dims(w.InputShape))
				switch {
				case w.Aiaas != nil:
					p("%.3f | %.3f | ", w.Aiaas.MedianMS, w.Aiaas.P99MS)
				case w.Status == "unsupported":
					p("not loaded | — | ")
				default:
					p("FAIL | — | ")
				}
				if w.ORT != nil {
					p("%.3f | %.3f | ", w.ORT.MedianMS, w.ORT.P99MS)
				} else {
					p("— | — | ")
				}
				if w.RatioAiaasORT > 0 {
					p("**%.2f×** | ", w.RatioAiaasORT)
				} else {
					p("— | ")
				}
				if w.Aiaas != nil {
					p("%.1f | %.0f %% | ", w.Aiaas.GFLOPs, 100*w.Aiaas.FracPeak)
				} else {
					p("— | — | ")
				}
				if w.ORT != nil && w.ORT.GFLOPs > 0 {
					p("%.1f | %.0f %% | ", w.ORT.GFLOPs, 100*w.ORT.FracPeak)
				} else {
					p("— | — | ")
				}
				if w.AllocsRuns > 0 {
					p("%.1f |\n", w.AllocsPerRun)
				} else {
					p("— |\n")
				}
			}
		}
		p("\n| model | opset | GFLOP / run | aiaas params | aiaas constants MiB | aiaas arena MiB | load: aiaas s | ORT s | max |Δ| aiaas vs PyTorch | ORT vs PyTorch | aiaas vs ORT | tolerance |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		seen := map[string]bool{}
		for _, r := range res.Runs {
			for _, w := range r.Rows {
				if seen[w.Model] || w.Status == "fail" {
					continue
				}
				seen[w.Model] = true
				if w.Status == "unsupported" {
					p("| %s | %d | — | — | — | — | not loaded: lacks %s | %.2f | — | %.1e | — | %.1e |\n",
						w.Model, w.Opset, orDash(strings.Join(w.MissingOps, ", ")), w.ORTLoadS, w.DiffORTRef, w.Tol)
					continue
				}
				p("| %s | %d | %.3f | %d | %.2f | %.2f | %.2f | %.2f | %.1e | %.1e | %.1e | %.1e |\n",
					w.Model, w.Opset, w.FLOPs/1e9, w.Params, mib(w.ConstBytes), mib(int64(w.ArenaBytes)),
					w.AiaasLoadS, w.ORTLoadS, w.DiffAiaasRef, w.DiffORTRef, w.DiffAiaasORT, w.Tol)
			}
		}
		p("\n")
	}

	if len(res.RSS) > 0 {
		p("Peak RSS while serving: a fresh process per model, without ONNX Runtime, reads the aiaas artifact, "+
			"returns the load's garbage to the OS, reads VmHWM (\"after load\") and resets it (/proc/self/clear_refs), then serves %d requests "+
			"one after another (a new input tensor and a new output each, GOGC default); bound = constants + one arena + 64 MiB. %s.\n\n",
			res.RSSRunsPerTest, where)
		p("| model | GOMAXPROCS | VmHWM serving MiB | bound MiB | within | VmHWM after load MiB | VmRSS at end MiB | constants MiB | arena MiB | median ms / request | GCs while serving |\n")
		p("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range res.RSS {
			if r.Status != "ok" {
				what := "FAIL"
				if r.Status == "unsupported" {
					what = "not loaded"
				}
				p("| %s | %d | %s | — | — | — | — | — | — | — | — |\n", r.Model, r.GOMAXPROCS, what)
				continue
			}
			within := "yes"
			if !r.Within {
				within = "**no**"
			}
			serve := fmt.Sprintf("%.1f", mib(r.HWMServe))
			if !r.HWMReset {
				serve += " (not reset: includes the load)"
			}
			gcs := fmt.Sprint(r.NumGC)
			if r.NumGC < 2 {
				gcs += " (few: raise -rss-runs)"
			}
			p("| %s | %d | %s | %.1f | %s | %.1f | %.1f | %.2f | %.2f | %.3f | %s |\n", r.Model, r.GOMAXPROCS, serve, mib(r.BoundBytes), within,
				mib(r.HWMLoad), mib(r.RSSEnd), mib(r.ConstBytes), mib(int64(r.ArenaBytes)), r.RunMS, gcs)
		}
		p("\n")
	}

	var notes []string
	for _, r := range res.Runs {
		for _, w := range r.Rows {
			switch w.Status {
			case "fail":
				notes = append(notes, fmt.Sprintf("- **FAIL** %s at GOMAXPROCS=%d: %s", w.Model, r.GOMAXPROCS, w.Error))
			case "unsupported":
				notes = append(notes, fmt.Sprintf("- %s at GOMAXPROCS=%d: aiaas cannot load it yet (%s); ONNX Runtime timed alone", w.Model, r.GOMAXPROCS, firstLine(w.Error)))
			}
		}
	}
	for _, r := range res.RSS {
		switch {
		case r.Status == "fail":
			notes = append(notes, fmt.Sprintf("- **FAIL** peak RSS of %s: %s", r.Model, r.Error))
		case r.Status == "unsupported":
			notes = append(notes, fmt.Sprintf("- peak RSS of %s: aiaas cannot load it yet (%s)", r.Model, firstLine(r.Error)))
		case r.ORTMapped:
			notes = append(notes, fmt.Sprintf("- **FAIL** peak RSS of %s: libonnxruntime was mapped in the serving process", r.Model))
		}
	}
	if len(notes) > 0 {
		p("%s\n\n", strings.Join(notes, "\n"))
	}
	return b.String()
}

func dims(s []int) string {
	var parts []string
	for _, d := range s {
		parts = append(parts, fmt.Sprint(d))
	}
	return strings.Join(parts, "×")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
