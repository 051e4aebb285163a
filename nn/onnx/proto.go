package onnx

// Field numbers and enum values from onnx.proto (onnx/onnx, onnx/onnx.proto).
// Only the fields this package reads or writes are listed.
const (
	// ModelProto
	modelIRVersion     = 1
	modelProducerName  = 2
	modelProducerVer   = 3
	modelDocString     = 6
	modelGraph         = 7
	modelOpsetImport   = 8
	modelMetadataProps = 14

	// OperatorSetIdProto
	opsetDomain  = 1
	opsetVersion = 2

	// StringStringEntryProto
	entryKey   = 1
	entryValue = 2

	// GraphProto
	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12
	graphSparseInit  = 15

	// NodeProto
	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	// AttributeProto
	attrName   = 1
	attrF      = 2
	attrI      = 3
	attrInts   = 8
	attrType   = 20
	attrRefArg = 21

	// AttributeProto.AttributeType
	attrTypeFloat = 1
	attrTypeInt   = 2

	// TensorProto
	tensorDims         = 1
	tensorDataType     = 2
	tensorSegment      = 3
	tensorFloatData    = 4
	tensorName         = 8
	tensorRawData      = 9
	tensorExternalData = 13
	tensorDataLocation = 14

	// TensorProto.DataType
	dataTypeFloat = 1

	// ValueInfoProto
	valueName = 1
	valueType = 2

	// TypeProto
	typeTensor = 1

	// TypeProto.Tensor
	ttElemType = 1
	ttShape    = 2

	// TensorShapeProto
	shapeDim = 1

	// TensorShapeProto.Dimension
	dimValue = 1
	dimParam = 2
)

// What Export writes: opset 13 is the first with Softmax over the last axis
// by default, and IR version 7 is the one that introduced opset 13.
const (
	exportOpset     = 13
	exportIRVersion = 7
)
