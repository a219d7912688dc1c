// Structural check of a DICOM file before GDCM parses it (internal to the DICOM reader files).
// GDCM 3.0 as packaged (Debian, assertions enabled) allocates every element's declared value
// length before reading the value, aborts the process on many malformed layouts, and, when its
// first parse of a data set fails, re-reads the file under lenient interpretations (16-bit VR
// lengths, mixed explicit/implicit, CP-246) that take lengths from arbitrary bytes. So medfm walks
// the element structure itself first, following GDCM's first parse (File Meta Information, data
// set, sequences, items, encapsulated fragments; GDCM's own length quirks), and throws FormatError
// for any file on which that parse would allocate past the end of its container, hit an assertion
// or fall back: a value length beyond its container, an invalid VR in an explicit-VR data set, a
// truncated element header, an item or delimiter out of place, nesting deeper than 64, a missing
// or unknown transfer syntax. Values are not interpreted. Reads the file's element headers only
// (values are skipped; a deflated data set is inflated, up to 1 GiB).
#pragma once
#include <cstddef>
#include <string>

namespace medfm::io::detail {

// up_to_pixel_data: only what GDCM's header read (ReadUpToTag (7FE0,0010)) parses: the elements
// up to and including the Pixel Data; otherwise the whole file, as GDCM's full read parses it.
void check_dicom_structure(const std::string& path, bool up_to_pixel_data = false);
// The same on bytes in memory; `name` is the file named in messages.
void check_dicom_structure(const void* data, size_t size, const std::string& name, bool up_to_pixel_data = false);

}  // namespace medfm::io::detail
