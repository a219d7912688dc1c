// What an embedding job reads, and how each input becomes model-ready samples.
//
// list_inputs(input): a file (any format of the table, io/formats.h), a folder (each file the
// format table accepts, sorted by name, not recursive, hidden files skipped; sub-folders that hold
// DICOM files are series), a DICOM series folder itself, or a CSV (`.csv`) whose `path` column
// names the inputs (relative paths resolve against the CSV's folder; an `id` column is used if
// present, else the path; every other column is kept as metadata).
//
// A Source is a list of inputs; load(i) turns input i into samples: one per 2D image (PNG, JPEG,
// TIFF, BMP, single-frame DICOM such as a radiograph), one per slice for a volume (NIfTI, DICOM
// series or multi-frame DICOM) along the chosen plane. Slides are refused (the whole-slide
// pipeline embeds them by tiles, never as one image).
#pragma once
#include <ATen/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "medfm/core/preprocess_spec.h"
#include "medfm/data/model_input.h"
#include "medfm/io/formats.h"

namespace medfm::extract {

struct InputList {
  std::vector<std::string> ids, paths;
  std::vector<std::string> extra_names;         // CSV columns other than path/id
  std::vector<std::vector<std::string>> extra;  // [column][row]
  size_t size() const { return paths.size(); }
};

// Throws IoError (missing input), FormatError (CSV without a path column, ragged rows, repeated
// column names) or Error (no inputs found).
InputList list_inputs(const std::string& input);

// RFC 4180 CSV: quoted fields, doubled quotes, CRLF, a UTF-8 byte-order mark. Rows of fields.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin);
// parse_csv of a file's contents; IoError when it cannot be opened.
std::vector<std::vector<std::string>> read_csv(const std::string& path);

// One model input: float32 [C,S,S], ready for the backbone (resized, cropped, normalised).
struct Sample {
  at::Tensor image;
  std::string id;
  std::map<std::string, std::string> meta;  // written as HDF5 /meta/<key> columns
};

class Source {
 public:
  virtual ~Source() = default;
  virtual size_t size() const = 0;                         // number of inputs
  virtual std::string id(size_t i) const = 0;              // input i's id
  virtual std::string path(size_t i) const = 0;            // input i's file or folder
  virtual std::vector<Sample> load(size_t i) const = 0;   // thread-safe; throws naming the file
};

// Values that are display values already (PNG / JPEG / TIFF / BMP files, colour DICOM) rather than
// measurements (CT HU, MR, any float) that need an intensity window.
bool is_display_image(const Image& img);

// How inputs become samples.
struct SampleOptions {
  PreprocessSpec preprocess;          // the model's resize / crop / normalisation
  data::IntensitySpec intensity{""};  // DICOM / NIfTI values -> [0,1]; window "" = preprocess.intensity
  std::string plane = "axial";        // volumes: axial | coronal | sagittal
  std::string slices;                 // volumes: "a:b:step" (empty: every slice)
  bool square_pixels = true;          // volumes: resample anisotropic slices to square pixels
  io::ReadOptions read;               // DICOM series choice and repairs, slide um/px ...
};

// Files read through the format table. Metadata per sample: `path`, the CSV's extra columns and,
// for volume slices, `plane`, `slice_index`, `slice_position_ras` ("x,y,z" mm, the slice centre),
// `pixel_spacing_mm`, `intensity` (the window used) and `source_id`.
std::unique_ptr<Source> make_file_source(InputList inputs, SampleOptions options);

}  // namespace medfm::extract
