// Command floor is the HTTP floor of the serving benchmark: a bare net/http
// handler that reads the whole request body (as aiaas must) and answers a
// fixed Open Inference Protocol response of the same shape as aiaas' MNIST
// answer. Nothing on the same machine and the same Go net/http stack can
// serve these requests faster, so aiaas' throughput is reported as a
// fraction of this one.
//
//	go run ./serve/floor -addr 127.0.0.1:18099
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
)

// resp is what aiaas answers for one MNIST image, give or take digits.
var resp = []byte(`{"model_name":"mnist","model_version":"1","outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,10],"data":[0.0001,0.0002,0.0003,0.0004,0.0005,0.0006,0.0007,0.9962,0.0008,0.0002]}]}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:18099", "listen address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The same cap aiaas puts on a body; reading it all is the work
		// the floor must do too.
		n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 64<<20))
		if err != nil {
			http.Error(w, `{"error":"body"}`, http.StatusRequestEntityTooLarge)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
		w.Header().Set("X-Body-Bytes", strconv.FormatInt(n, 10))
		w.Write(resp)
	})
	log.Printf("floor listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, h))
}
