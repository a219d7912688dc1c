// Internal: the format rows' functions, one set per reader file. Only formats.cpp includes this.
#pragma once
#include "medfm/io/formats.h"

namespace medfm::io::detail {

bool nifti_can_read(const std::string& path, const std::string& head, bool is_dir);
Image nifti_read(const std::string& path, const ReadOptions& opts);

bool dicom_can_read(const std::string& path, const std::string& head, bool is_dir);
Image dicom_read(const std::string& path, const ReadOptions& opts);
bool dicom_series_can_read(const std::string& path, const std::string& head, bool is_dir);
Image dicom_series_read(const std::string& path, const ReadOptions& opts);

bool slide_can_read(const std::string& path, const std::string& head, bool is_dir);
std::unique_ptr<Slide> slide_open(const std::string& path, const ReadOptions& opts);

bool image2d_can_read(const std::string& path, const std::string& head, bool is_dir);
Image image2d_read(const std::string& path, const ReadOptions& opts);

}  // namespace medfm::io::detail
