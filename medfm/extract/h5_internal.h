// HDF5 helpers shared by the feature and coords stores (internal to extract/; includes H5Cpp.h).
#pragma once
#include <H5Cpp.h>

#include <string>
#include <vector>

#include "medfm/data/tiling.h"

namespace medfm::extract::h5 {

const H5::StrType& vlen_str();  // variable-length UTF-8 string type
// s, with every byte that is not part of well-formed UTF-8 written as \xNN (Python's
// "backslashreplace"): the strings are declared UTF-8, and h5py must be able to decode them (a
// Latin-1 file name would otherwise be unreadable as str).
std::string utf8_or_escaped(const std::string& s);
// Strings and string attributes go through utf8_or_escaped.
void write_strings(H5::Group& where, const std::string& name, const std::vector<std::string>& v);
void attr_str(H5::H5Object& o, const std::string& k, const std::string& v);
void attr_int(H5::H5Object& o, const std::string& k, int64_t v);
void attr_double(H5::H5Object& o, const std::string& k, double v);
// /coords int64 [N,2] with TRIDENT's attributes, and /tissue float32 [N] (h5_coords.h).
void write_coords(H5::H5File& f, const data::TileGrid& g, const std::string& name, const std::string& savetodir);

}  // namespace medfm::extract::h5
