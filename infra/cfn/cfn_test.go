package cfn

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestS3PolicyOfTheTemplate(t *testing.T) {
	tp, err := Load("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tp.S3Policy("InferFunction", "ModelBucket", "bkt")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Action, Resource []string
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	puts := 0
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			if !strings.HasPrefix(a, "s3:") {
				t.Errorf("non-S3 action %s", a)
			}
			if a == "s3:PutObject" {
				puts++
				if !slices.Equal(s.Resource, []string{"arn:aws:s3:::bkt/tenants/*/records/audit/*"}) {
					t.Errorf("infer may put %v", s.Resource)
				}
			}
		}
		for _, r := range s.Resource {
			if r != "arn:aws:s3:::bkt" && !strings.HasPrefix(r, "arn:aws:s3:::bkt/") {
				t.Errorf("resource %s outside the bucket", r)
			}
		}
	}
	if puts != 1 {
		t.Errorf("%d put statements in %s", puts, b)
	}
}

func TestS3PolicyRefusesOtherResources(t *testing.T) {
	tp, err := Load("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tp.Resources["X"] = map[string]any{"Type": "AWS::Serverless::Function", "Properties": map[string]any{"Policies": []any{
		map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::elsewhere/*"}}},
	}}}
	if _, err := tp.S3Policy("X", "ModelBucket", "bkt"); err == nil {
		t.Error("a statement on another bucket was accepted")
	}
	tp.Resources["X"]["Properties"] = map[string]any{"Policies": []any{"AmazonS3FullAccess"}}
	if _, err := tp.S3Policy("X", "ModelBucket", "bkt"); err == nil {
		t.Error("a managed policy was accepted")
	}
}
