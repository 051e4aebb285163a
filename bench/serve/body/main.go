// Command body writes the request bodies of the serving benchmark into a
// folder: infer.json (an Open Inference Protocol v2 JSON request for one
// 1×784 MNIST-like image), infer.bin with infer.bin.hdrlen (the same request
// in the binary tensor extension: JSON header, then 3136 raw little-endian
// float32 bytes) and digit.png (a 28×28 grey PNG for an endpoint whose
// preprocess plugin decodes images).
//
//	go run ./serve/body -dir /tmp/bodies -input input
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	dir := flag.String("dir", ".", "output folder")
	input := flag.String("input", "input", "the model's input name")
	output := flag.String("output", "probabilities", "the model's output name")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	// A stroke-like pattern rather than noise, so the number formatting in
	// the JSON body has the mix of zeros and fractions a real image has.
	px := make([]float32, 784)
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 0; y < 28; y++ {
		for x := 0; x < 28; x++ {
			d := math.Abs(float64(x-14)) + math.Abs(float64(y-14)/2)
			if d < 6 {
				v := uint8(255 - 40*int(d))
				img.SetGray(x, y, color.Gray{Y: v})
				px[28*y+x] = float32(v) / 255
			}
		}
	}
	// Field order as in the protocol's examples and its clients (name,
	// shape, datatype, data); a map would sort "data" first.
	type in struct {
		Name     string    `json:"name"`
		Shape    []int     `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float32 `json:"data"`
	}
	js, err := json.Marshal(map[string]any{"inputs": []in{{*input, []int{1, 784}, "FP32", px}}})
	if err != nil {
		log.Fatal(err)
	}
	must(os.WriteFile(filepath.Join(*dir, "infer.json"), js, 0o644))
	hdr := fmt.Sprintf(`{"inputs":[{"name":%q,"shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}],"outputs":[{"name":%q,"parameters":{"binary_data":true}}]}`, *input, *output)
	var bin bytes.Buffer
	bin.WriteString(hdr)
	for _, v := range px {
		binary.Write(&bin, binary.LittleEndian, v)
	}
	must(os.WriteFile(filepath.Join(*dir, "infer.bin"), bin.Bytes(), 0o644))
	must(os.WriteFile(filepath.Join(*dir, "infer.bin.hdrlen"), []byte(strconv.Itoa(len(hdr))), 0o644))
	var p bytes.Buffer
	must(png.Encode(&p, img))
	must(os.WriteFile(filepath.Join(*dir, "digit.png"), p.Bytes(), 0o644))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
