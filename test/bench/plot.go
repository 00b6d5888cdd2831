package main

import (
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotSweep draws the scaling sweep side by side: convergence time of the
// operator and the baseline, and the operator's memory, against members.
func plotSweep(path string, results []result) error {
	var opTime, baseTime, rss, heap plotter.XYs
	for _, r := range results {
		if !isSweep(r) {
			continue
		}
		x := float64(r.Members)
		opTime = append(opTime, plotter.XY{X: x, Y: r.OperatorSeconds})
		baseTime = append(baseTime, plotter.XY{X: x, Y: r.BaselineSeconds})
		rss = append(rss, plotter.XY{X: x, Y: mib(float64(r.RSSBytes))})
		heap = append(heap, plotter.XY{X: x, Y: mib(float64(r.HeapBytes))})
	}
	conv := plot.New()
	conv.Title.Text = "Convergence, 50 MyResources"
	conv.X.Label.Text, conv.Y.Label.Text = "member clusters", "seconds to all Ready"
	if err := plotutil.AddLinePoints(conv, "hub-operator", opTime, "client-go baseline", baseTime); err != nil {
		return err
	}
	mem := plot.New()
	mem.Title.Text = "hub-operator memory"
	mem.X.Label.Text, mem.Y.Label.Text = "member clusters", "MiB"
	if err := plotutil.AddLinePoints(mem, "RSS", rss, "Go heap in use", heap); err != nil {
		return err
	}
	for _, p := range []*plot.Plot{conv, mem} {
		p.Y.Min = 0
		p.Legend.Top, p.Legend.Left = true, true
	}

	img := vgimg.New(vg.Points(900), vg.Points(380))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	plots := [][]*plot.Plot{{conv, mem}}
	canvases := plot.Align(plots, tiles, dc)
	conv.Draw(canvases[0][0])
	mem.Draw(canvases[0][1])

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
