package oip_test

import (
	"fmt"

	"github.com/aiaas/aiaas/platform/oip"
)

func Example() {
	body := []byte(`{"id":"7","inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[[0,0.5,1,0.25]]}]}`)
	req, err := oip.DecodeRequest(body, -1, nil)
	if err != nil {
		fmt.Println(err) // errors.Is(err, oip.ErrBadRequest): answer 400
		return
	}
	in := req.Inputs[0]
	fmt.Println(in.Name, in.Shape, in.F32)

	resp, headerLen := oip.AppendResponse(nil, &oip.InferenceResponse{
		ModelName: "demo", ID: req.ID,
		Outputs: []oip.ResponseOutput{{Name: "sum", Shape: []int64{1}, Datatype: oip.FP32, F32: []float32{1.75}}},
	})
	fmt.Println(string(resp), headerLen)
	// Output:
	// input [1 4] [0 0.5 1 0.25]
	// {"model_name":"demo","id":"7","outputs":[{"name":"sum","shape":[1],"datatype":"FP32","data":[1.75]}]} -1
}
