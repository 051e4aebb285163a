package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aiaas/aiaas/sdk/client"
)

// fakeServer answers a few routes of the API the way an aiaas server does.
func fakeServer() *httptest.Server {
	var polls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/models/{model}/versions/{version}/infer", func(w http.ResponseWriter, r *http.Request) {
		var req client.InferRequest
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"model_name":%q,"model_version":"2","parameters":{"model_version":"2","model_sha256":"9f86d0"},
			"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":[0.1,0.7,0.2]}]}`, r.PathValue("model"))
	})
	mux.HandleFunc("POST /v1/models/{model}/versions", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"model":%q,"version":1,"sha256":"…","size":%d}`, r.PathValue("model"), n)
	})
	mux.HandleFunc("GET /v1/models/{model}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "r-42")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("model %q not found", r.PathValue("model"))})
	})
	mux.HandleFunc("GET /v1/training-jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch polls.Add(1) {
		case 1:
			fmt.Fprint(w, `{"id":"j1","status":"running","model":"iris","progress":{"epoch":1,"epochs":2,"batch":4,"batches":4,"loss":0.61,"accuracy":0.7}}`)
		default:
			fmt.Fprint(w, `{"id":"j1","status":"succeeded","model":"iris","result":{"version":4,"test_accuracy":0.97,"sha256":"…"}}`)
		}
	})
	return httptest.NewServer(mux)
}

func Example() {
	srv := fakeServer()
	defer srv.Close()

	c, err := client.New(srv.URL, &client.Options{APIKey: "aiaas_…"})
	if err != nil {
		panic(err)
	}
	resp, err := c.Infer(context.Background(), "iris", "prod", &client.InferRequest{
		Inputs: []client.InferInput{{Name: "input", Datatype: "FP32", Shape: []int64{1, 4}, Data: []float32{5.1, 3.5, 1.4, 0.2}}},
	})
	if err != nil {
		panic(err)
	}
	probs, _ := resp.Output("probabilities").Float32s()
	version, sha := resp.Lineage()
	fmt.Println(probs, "from version", version, sha)
	// Output: [0.1 0.7 0.2] from version 2 9f86d0
}

func ExampleClient_PushModel() {
	srv := fakeServer()
	defer srv.Close()
	c, _ := client.New(srv.URL, nil)

	// Any reader works; it is streamed, never held in memory. An *os.File
	// would also let the client retry after a 429/503.
	artifact := strings.NewReader("…safetensors bytes…")
	size := artifact.Size()
	pm, err := c.PushModel(context.Background(), "iris", artifact, size, func(sent int64) {
		if sent == size {
			fmt.Println("sent", sent, "bytes")
		}
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("published", pm.Model, "version", pm.Version)
	// Output:
	// sent 23 bytes
	// published iris version 1
}

func ExampleIsNotFound() {
	srv := fakeServer()
	defer srv.Close()
	c, _ := client.New(srv.URL, nil)

	_, err := c.Model(context.Background(), "nope")
	if client.IsNotFound(err) {
		fmt.Println("not found:", err)
	}
	// Output: not found: 404 Not Found: model "nope" not found (request r-42)
}

func ExampleClient_WaitTrainingJob() {
	srv := fakeServer()
	defer srv.Close()
	c, _ := client.New(srv.URL, nil)

	job, err := c.WaitTrainingJob(context.Background(), "j1", 10*time.Millisecond, func(j *client.TrainingJob) {
		if j.Progress != nil {
			fmt.Printf("epoch %d/%d loss %.2f\n", j.Progress.Epoch, j.Progress.Epochs, j.Progress.Loss)
		}
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(job.Status, "version", job.Result.Version, "accuracy", job.Result.TestAccuracy)
	// Output:
	// epoch 1/2 loss 0.61
	// succeeded version 4 accuracy 0.97
}
