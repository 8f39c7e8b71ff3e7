// Reads dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) with
// dlib's own deserialiser and writes dlib's XML dump of every layer and its parameters
// (net_to_xml), which dlib_to_onnx.py turns into ONNX. netdef.inc is the network's
// definition copied by models/obtain.sh from dlib's tools/python/src/face_recognition.cpp.
//
//   g++ -O1 -std=c++17 -I dlib-20.0.1 -I . -DDLIB_NO_GUI_SUPPORT dlib_to_xml.cpp \
//       dlib-20.0.1/dlib/all/source.cpp -lpthread -o dlib_to_xml
//   ./dlib_to_xml dlib_face_recognition_resnet_model_v1.dat net.xml
#include <dlib/dnn.h>
#include <iostream>
using namespace dlib;
#include "netdef.inc"
int main(int argc, char** argv) {
    if (argc != 3) { std::cerr << "usage: dlib_to_xml MODEL.dat OUT.xml\n"; return 2; }
    anet_type net;
    deserialize(argv[1]) >> net;
    net_to_xml(net, argv[2]);
    return 0;
}
