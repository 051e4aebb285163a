package onnx

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Decoding a protobuf message allocates more than its encoded size where
// a packed varint of one byte becomes an int64 of eight, or an empty
// message a Go struct of a hundred. prescan walks the encoded model with
// the message descriptors generated from onnx.proto, before anything is
// decoded, and refuses files whose decoded form would exceed a budget, or
// that nest messages deeper than maxDepth (onnx.proto recurses through
// subgraph attributes).
const (
	maxDepth        = 32
	perMessageBytes = 160 // a generated struct, its slice slot and map overhead
	perScalarBytes  = 8
)

var errBudget = errors.New("decodes to more memory than its size allows")

// prescan checks b, an encoded md, against budget bytes of decoded size.
func prescan(b []byte, md protoreflect.MessageDescriptor, budget int64) error {
	left := budget
	if err := scanMessage(b, md, 0, &left); err != nil {
		return err
	}
	return nil
}

func scanMessage(b []byte, md protoreflect.MessageDescriptor, depth int, left *int64) error {
	if depth > maxDepth {
		return errors.New("messages nested deeper than 32")
	}
	*left -= perMessageBytes
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var fd protoreflect.FieldDescriptor
		if fields != nil {
			fd = fields.ByNumber(num)
		}
		switch typ {
		case protowire.VarintType:
			_, n = protowire.ConsumeVarint(b)
			*left -= perScalarBytes
		case protowire.Fixed32Type:
			_, n = protowire.ConsumeFixed32(b)
			*left -= perScalarBytes
		case protowire.Fixed64Type:
			_, n = protowire.ConsumeFixed64(b)
			*left -= perScalarBytes
		case protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n < 0 {
				return errWire
			}
			switch {
			case fd == nil:
				// Unknown fields are kept by the decoder as raw bytes.
				*left -= int64(len(v))
			case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
				if err := scanMessage(v, fd.Message(), depth+1, left); err != nil {
					return err
				}
			case fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.BytesKind:
				*left -= int64(len(v)) + 24
			default:
				// A packed list of scalars: count its elements.
				count := int64(0)
				switch fd.Kind() {
				case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
					count = int64(len(v) / 4)
				case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
					count = int64(len(v) / 8)
				default:
					for _, c := range v {
						if c < 0x80 {
							count++
						}
					}
				}
				*left -= count * perScalarBytes
			}
		default:
			return errWire // groups are not used by onnx.proto
		}
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if *left < 0 {
			return errBudget
		}
	}
	return nil
}

var errWire = errors.New("malformed protobuf")
