package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// percentile is the p-th percentile (0-100) of the latencies, or 0.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// line is one run, for the progress log.
func (s sample) line(tail bool) string {
	l := fmt.Sprintf("%.0f events/s, %.2f CPU s per million, %.1f MiB peak RSS, %.0f wire bytes/event, %d requests, %d events (%d duplicates)",
		s.eventsPerSec(), s.cpuPerMillion(), mib(s.maxRSS), s.wirePerEvent(), s.requests, s.distinct, s.dupes)
	if tail {
		l += fmt.Sprintf(", latency p50 %v p99 %v", percentile(s.lat, 50).Round(time.Millisecond), percentile(s.lat, 99).Round(time.Millisecond))
	}
	return l
}

func (s sample) wirePerEvent() float64 { return float64(s.wire) / float64(s.distinct) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// median of f over the samples.
func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// metric is one row of the report.
type metric struct {
	name   string
	format string
	f      func(sample) float64
}

var metrics = []metric{
	{"events/s", "%.0f", sample.eventsPerSec},
	{"CPU s per million events (user+sys)", "%.2f", sample.cpuPerMillion},
	{"peak RSS, MiB", "%.1f", func(s sample) float64 { return mib(s.maxRSS) }},
	{"bytes on the wire per event", "%.0f", sample.wirePerEvent},
	{"bytes on the wire, MiB", "%.1f", func(s sample) float64 { return mib(s.wire) }},
}

var tailMetrics = []metric{
	{"write to arrival p50, ms", "%.0f", func(s sample) float64 { return ms(percentile(s.lat, 50)) }},
	{"write to arrival p99, ms", "%.0f", func(s sample) float64 { return ms(percentile(s.lat, 99)) }},
	{"write to arrival max, ms", "%.0f", func(s sample) float64 { return ms(percentile(s.lat, 100)) }},
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printReport(w io.Writer, cfg config, res []result) {
	for _, r := range res {
		switch r.mode {
		case "tail":
			fmt.Fprintf(w, "\nmode tail: %d lines of about %d bytes appended at %.0f lines/s for %v to a followed file; medians of %d runs each\n",
				r.events, lineBytes, cfg.tailRate, cfg.tailFor, len(r.producer))
		case "large":
			fmt.Fprintf(w, "\nmode large: %d events of about %d bytes, producer -source file; medians of %d runs each\n", r.events, largeBytes, len(r.producer))
		default:
			fmt.Fprintf(w, "\nmode %s: %d events of about %d bytes, producer -source %s; medians of %d runs each\n", r.mode, r.events, lineBytes, r.mode, len(r.producer))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\tproducer\tfloor\tproducer/floor\t")
		ms := metrics
		if r.mode == "tail" { // events/s is the rate's; CPU per event is still the client's
			ms = append([]metric{metrics[1], metrics[2], metrics[3]}, tailMetrics...)
		}
		for _, m := range ms {
			p, f := median(r.producer, m.f), median(r.floor, m.f)
			ratio := "-"
			if f != 0 {
				ratio = fmt.Sprintf("%.2f", p/f)
			}
			fmt.Fprintf(tw, "%s\t"+m.format+"\t"+m.format+"\t%s\t\n", m.name, p, f, ratio)
		}
		tw.Flush()
	}
}
