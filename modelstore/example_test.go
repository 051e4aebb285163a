package modelstore_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/aiaas/aiaas/modelstore"
)

func Example() {
	ctx := context.Background()
	s, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		panic(err)
	}
	weights := "not really weights"
	info, _ := s.PublishModel(ctx, "acme", "mnist", strings.NewReader(weights), int64(len(weights)), []byte(`{"test_accuracy":0.97}`))
	_ = s.SetAlias(ctx, "acme", "mnist", "prod", modelstore.Alias{Version: info.Version})

	v, _ := s.Resolve(ctx, "acme", "mnist", "prod")
	data, _, err := s.OpenModel(ctx, "acme", "mnist", v.Version)
	fmt.Println(v.Version, string(data), err, string(v.Meta))
	// Output: 1 not really weights <nil> {"test_accuracy":0.97}
}
