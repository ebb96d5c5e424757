// tf_table: a C interface over leveldb::Table and leveldb::TableBuilder (see tf_table.h).
#include "interop/tf_table.h"

#include <leveldb/env.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/table.h>
#include <leveldb/table_builder.h>

#include <cstdint>
#include <cstdio>
#include <new>
#include <cstring>
#include <string>

namespace {

void set_err(char *err, const std::string &what, const leveldb::Status &s) {
  std::snprintf(err, TF_TABLE_ERR, "%s: %s", what.c_str(), s.ToString().c_str());
}

// A file held in memory, for tf_table_open_mem.
class MemFile : public leveldb::RandomAccessFile {
 public:
  explicit MemFile(std::string data) : data_(std::move(data)) {}
  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice *result, char *) const override {
    if (offset > data_.size()) return leveldb::Status::IOError("read past the end");
    size_t m = std::min(n, data_.size() - static_cast<size_t>(offset));
    *result = leveldb::Slice(data_.data() + offset, m);
    return leveldb::Status::OK();
  }
  uint64_t size() const { return data_.size(); }

 private:
  std::string data_;
};

// LevelDB allocates a block's declared size before reading it, so a damaged footer could ask for
// gigabytes (found by fuzzing: a 34 GB request). The footer's two block handles (REFERENCE.md
// section 7: varint64 offset and size each, then padding and the magic in the last 48 bytes)
// must lie inside the file; blocks named by the crc-checked index block are trusted as far as
// its crc goes, and a failed allocation still becomes an error below (std::bad_alloc).
bool get_varint64(const unsigned char *&p, const unsigned char *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift <= 63 && p < end; shift += 7) {
    uint64_t b = *p++;
    *v |= (b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

bool footer_fits(leveldb::RandomAccessFile *file, uint64_t size, std::string *why) {
  const size_t kFooter = 48, kTrailer = 5;
  if (size < kFooter) {
    *why = "shorter than LevelDB's 48-byte footer";
    return false;
  }
  char scratch[kFooter];
  leveldb::Slice f;
  leveldb::Status s = file->Read(size - kFooter, kFooter, &f, scratch);
  if (!s.ok() || f.size() != kFooter) {
    *why = "cannot read the footer";
    return false;
  }
  const unsigned char *p = reinterpret_cast<const unsigned char *>(f.data()), *end = p + kFooter - 8;
  for (const char *what : {"metaindex", "index"}) {
    uint64_t off, len;
    if (!get_varint64(p, end, &off) || !get_varint64(p, end, &len) || off > size - kFooter ||
        len > size - kFooter - off || len + kTrailer > size - kFooter - off) {
      *why = std::string("the footer's ") + what + " block lies outside the file";
      return false;
    }
  }
  return true;
}

}  // namespace

struct tf_table {
  std::string name;
  leveldb::RandomAccessFile *file = nullptr;
  leveldb::Table *table = nullptr;
  leveldb::Iterator *it = nullptr;
  bool started = false;
};

static tf_table *open_file(tf_table *t, uint64_t size, char *err) {
  const std::string what = t->name + ": not a readable TensorFlow .index table (LevelDB format)";
  std::string why;
  if (!footer_fits(t->file, size, &why)) {
    std::snprintf(err, TF_TABLE_ERR, "%s: %s", what.c_str(), why.c_str());
    tf_table_close(t);
    return nullptr;
  }
  leveldb::Options opt;
  opt.paranoid_checks = true;  // the index block's crc is checked too
  leveldb::Status s;
  try {
    s = leveldb::Table::Open(opt, t->file, size, &t->table);
  } catch (const std::bad_alloc &) {
    s = leveldb::Status::Corruption("a block larger than memory");
  }
  if (!s.ok()) {
    set_err(err, what, s);
    tf_table_close(t);
    return nullptr;
  }
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  t->it = t->table->NewIterator(ro);
  return t;
}

extern "C" tf_table *tf_table_open(const char *path, char err[TF_TABLE_ERR]) {
  tf_table *t = new tf_table;
  t->name = path;
  leveldb::Env *env = leveldb::Env::Default();
  uint64_t size = 0;
  leveldb::Status s = env->GetFileSize(path, &size);
  if (s.ok()) s = env->NewRandomAccessFile(path, &t->file);
  if (!s.ok()) {
    set_err(err, std::string(path) + ": cannot open", s);
    delete t;
    return nullptr;
  }
  return open_file(t, size, err);
}

extern "C" tf_table *tf_table_open_mem(const void *buf, size_t len, const char *name, char err[TF_TABLE_ERR]) {
  tf_table *t = new tf_table;
  t->name = name;
  t->file = new MemFile(std::string(static_cast<const char *>(buf), len));
  return open_file(t, len, err);
}

extern "C" void tf_table_close(tf_table *t) {
  if (!t) return;
  delete t->it;  // before the table it reads
  delete t->table;
  delete t->file;
  delete t;
}

extern "C" int tf_table_next(tf_table *t, const char **key, size_t *klen, const char **val, size_t *vlen,
                             char err[TF_TABLE_ERR]) {
  try {  // a data block is read (and allocated at its declared size) as the iterator reaches it
    if (!t->started) {
      t->it->SeekToFirst();
      t->started = true;
    } else if (t->it->Valid()) {
      t->it->Next();
    }
  } catch (const std::bad_alloc &) {
    std::snprintf(err, TF_TABLE_ERR, "%s: damaged .index table: a block larger than memory", t->name.c_str());
    return -1;
  }
  if (!t->it->Valid()) {
    if (t->it->status().ok()) return 0;
    set_err(err, t->name + ": damaged .index table", t->it->status());
    return -1;
  }
  leveldb::Slice k = t->it->key(), v = t->it->value();
  *key = k.data(), *klen = k.size(), *val = v.data(), *vlen = v.size();
  return 1;
}

struct tf_table_writer {
  std::string path, last;
  bool have_last = false;
  leveldb::WritableFile *file = nullptr;
  leveldb::TableBuilder *builder = nullptr;
  leveldb::Options opt;
};

extern "C" tf_table_writer *tf_table_writer_open(const char *path, int snappy, char err[TF_TABLE_ERR]) {
  tf_table_writer *w = new tf_table_writer;
  w->path = path;
  w->opt.compression = snappy ? leveldb::kSnappyCompression : leveldb::kNoCompression;
  leveldb::Status s = leveldb::Env::Default()->NewWritableFile(path, &w->file);
  if (!s.ok()) {
    set_err(err, std::string(path) + ": cannot create", s);
    delete w;
    return nullptr;
  }
  w->builder = new leveldb::TableBuilder(w->opt, w->file);
  return w;
}

extern "C" int tf_table_writer_add(tf_table_writer *w, const char *key, size_t klen, const void *val,
                                   size_t vlen, char err[TF_TABLE_ERR]) {
  leveldb::Slice k(key, klen);
  if (w->have_last && k.compare(leveldb::Slice(w->last)) <= 0) {  // TableBuilder would assert
    std::snprintf(err, TF_TABLE_ERR, "%s: key '%.*s' does not sort after the previous one", w->path.c_str(),
                  static_cast<int>(klen), key);
    return -1;
  }
  w->builder->Add(k, leveldb::Slice(static_cast<const char *>(val), vlen));
  w->last.assign(key, klen);
  w->have_last = true;
  return 0;
}

extern "C" int tf_table_writer_finish(tf_table_writer *w, char err[TF_TABLE_ERR]) {
  leveldb::Status s = w->builder->Finish();
  if (s.ok()) s = w->file->Sync();
  if (s.ok()) s = w->file->Close();
  int rc = 0;
  if (!s.ok()) {
    set_err(err, w->path + ": cannot write", s);
    rc = -1;
  }
  delete w->builder;
  delete w->file;
  delete w;
  return rc;
}
