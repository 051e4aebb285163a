package dataset_test

import (
	"fmt"
	"strings"

	"github.com/aiaas/aiaas/nn/dataset"
)

func ExampleReadCSV() {
	csv := "sepal,petal,species\n5.1,1.4,0\n7.0,4.7,1\n6.3,6.0,2\n5.8,4.1,1\n"
	s, err := dataset.ReadCSV(strings.NewReader(csv), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	train, val := s.Split(0.25, 0)
	fmt.Println(s.N, s.Features, s.Classes, train.N, val.N, val.Y)
	// Output: 4 2 3 3 1 [1]
}
