// decode_pickle: the downsampled ImageNet batches (Chrabaszcz et al. 2017, image-net.org's
// Imagenet32/64 zips): each member is a Python pickle of {'data': uint8 [N, 3*S*S] (R, G, B
// planes, each row-major SxS), 'labels': [1..1000], 'mean': ...}; and PyTorch's state dicts
// (data.pkl of a torch.save zip, as HF hub's pytorch_model.bin): {name: tensor} with each tensor
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) over a persistent id
// ('storage', torch.FloatStorage, key, location, numel) naming the zip member data/<key>.
// The pickle is read by a small stack machine that runs nothing: it knows the opcodes of
// protocols 2 to 5 that such files use, and of callables only an allow-list per kind of file
// (ImageNet: the numpy array and dtype constructors, plus codecs.encode, which Python-2-style
// byte strings go through; torch: _rebuild_tensor_v2, the storage types, OrderedDict); any
// other GLOBAL, an unknown opcode or a declared length past the end is refused with the file
// name and the byte offset. Values live in one pool addressed by index, so shared and cyclic
// references (memo) need no recursion and everything is freed in one pass.
#include "datasets/decode.h"
#include "base/util.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_BYTES, V_LIST, V_TUPLE, V_DICT, V_GLOBAL, V_DTYPE, V_ARRAY,
       V_STORAGE, V_TENSOR };
static const char *const kind_name[] = {"None", "bool", "int", "float", "str", "bytes", "list",
                                        "tuple", "dict", "callable", "numpy.dtype", "numpy.ndarray",
                                        "torch storage", "torch.Tensor"};
// The allow-listed callables.
enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_ENCODE, G_FROMBUFFER, G_ODICT, G_REBUILD, G_STORAGE };
enum { PK_IMAGENET, PK_TORCH };  // which allow-list, and what the messages call the file

#define PK_MAX_DIMS 8
// Values and memo slots a batch can need (its labels list: about 130000 ints); more means a
// hostile file, refused before the pool grows into gigabytes.
#define PK_MAX_VALUES (1 << 22)

typedef struct {
  int kind;
  size_t off;           // byte offset of the opcode that made it (messages)
  int64_t i;            // int, bool, global id
  const uint8_t *p;     // str (UTF-8), bytes, array data
  size_t n;             // their length in bytes
  uint8_t *owned;       // bytes decoded from latin1 text (codecs.encode)
  int *items;           // list, tuple, dict (key, value pairs)
  size_t n_items, cap;
  char dt_kind;         // dtype: 'u', 'i', 'f', 'b', ...; array: its dtype's
  int dt_size;
  int ndim;             // array: -1 until BUILD gives the shape
  int64_t shape[PK_MAX_DIMS];
  int fortran;
  int storage;          // tensor: its storage's value; storage: i is its element count
  int64_t offset;       // tensor: first element in the storage
} pval;

typedef struct {
  const uint8_t *buf;
  size_t len, pos, op;  // op: offset of the opcode being run
  const char *name;
  pval *v;
  size_t nv, cap_v;
  int *stack;
  size_t ns, cap_s;
  size_t *marks;
  size_t nm, cap_m;
  int *memo;            // value index or -1
  size_t n_memo;
  int mode;             // PK_IMAGENET or PK_TORCH
} pk;

#define PERR(P, ...) pk_err((P), __VA_ARGS__)
static int pk_err(pk *p, const char *fmt, ...) IGPT_PRINTF(2, 3);
static int pk_err(pk *p, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->mode == PK_TORCH)
    return igpt_err("%s: byte offset %zu: %s: not a PyTorch state dict this reader accepts (or a damaged one)",
                    p->name, p->op, msg);
  return igpt_err("%s: byte offset %zu: %s: not a downsampled-ImageNet pickle (or a damaged one); fetch it again",
                  p->name, p->op, msg);
}

static int new_val(pk *p, int kind) {
  if (p->nv == p->cap_v) {
    p->cap_v = p->cap_v ? 2 * p->cap_v : 64;
    p->v = xrealloc(p->v, p->cap_v * sizeof *p->v);
  }
  pval *v = &p->v[p->nv];
  memset(v, 0, sizeof *v);
  v->kind = kind;
  v->off = p->op;
  v->ndim = -1;
  return (int)p->nv++;
}

static void add_item(pval *v, int x) {
  if (v->n_items == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 4;
    v->items = xrealloc(v->items, v->cap * sizeof(int));
  }
  v->items[v->n_items++] = x;
}

static void push(pk *p, int x) {
  if (p->ns == p->cap_s) {
    p->cap_s = p->cap_s ? 2 * p->cap_s : 64;
    p->stack = xrealloc(p->stack, p->cap_s * sizeof(int));
  }
  p->stack[p->ns++] = x;
}

// The lowest stack position a plain pop may reach: the top mark.
static size_t floor_of(const pk *p) { return p->nm ? p->marks[p->nm - 1] : 0; }

static int pop(pk *p, int *x) {
  if (p->ns <= floor_of(p)) return PERR(p, "stack underflow (opcode 0x%02x)", p->buf[p->op]);
  *x = p->stack[--p->ns];
  return 0;
}

// Pops the top mark; the items above it start at *from.
static int pop_mark(pk *p, size_t *from) {
  if (!p->nm) return PERR(p, "opcode 0x%02x without a MARK", p->buf[p->op]);
  *from = p->marks[--p->nm];
  return 0;
}

static int need(pk *p, size_t n, const char *what) {
  if (n > p->len - p->pos)
    return PERR(p, "%s declares %zu bytes but only %zu remain (truncated?)", what, n, p->len - p->pos);
  return 0;
}

static uint64_t rd_le(const uint8_t *b, int n) {
  uint64_t x = 0;
  for (int i = n - 1; i >= 0; i--) x = x << 8 | b[i];
  return x;
}

// Reads an n-byte little-endian length field, then checks that many bytes remain.
static int read_len(pk *p, int n, const char *what, size_t *out) {
  if (need(p, (size_t)n, what)) return -1;
  uint64_t l = rd_le(p->buf + p->pos, n);
  p->pos += (size_t)n;
  if (l > p->len - p->pos)
    return PERR(p, "%s declares %llu bytes but only %zu remain (truncated?)", what, (unsigned long long)l,
                p->len - p->pos);
  *out = (size_t)l;
  return 0;
}

static int is_str(const pval *v, const char *s) {
  size_t n = strlen(s);
  return (v->kind == V_STR || v->kind == V_BYTES) && v->n == n && !memcmp(v->p, s, n);
}

static int find_global(pk *p, const pval *mod, const pval *nm);

// torch's storage types: the element kind and size of the tensors built over them.
static const struct { const char *name; char kind; int size; } torch_storages[] = {
    {"FloatStorage", 'f', 4}, {"DoubleStorage", 'f', 8}, {"HalfStorage", 'f', 2}, {"BFloat16Storage", 'h', 2},
    {"LongStorage", 'i', 8},  {"IntStorage", 'i', 4},    {"ShortStorage", 'i', 2}, {"CharStorage", 'i', 1},
    {"ByteStorage", 'u', 1},  {"BoolStorage", 'b', 1},
};

// A torch-mode global, or -1 (no error set).
static int torch_global(const pval *mod, const pval *nm, char *kind, int *size) {
  if (is_str(mod, "collections") && is_str(nm, "OrderedDict")) return G_ODICT;
  if (is_str(mod, "torch._utils") && is_str(nm, "_rebuild_tensor_v2")) return G_REBUILD;
  if (is_str(mod, "torch"))
    for (size_t k = 0; k < sizeof torch_storages / sizeof torch_storages[0]; k++)
      if (is_str(nm, torch_storages[k].name)) {
        *kind = torch_storages[k].kind, *size = torch_storages[k].size;
        return G_STORAGE;
      }
  return -1;
}

// The allow-listed callable mod.nm as a new value on the stack, or -1 (refused, with the names).
static int push_global(pk *p, const pval *mod, const pval *nm) {
  char kind = 0;
  int size = 0, g = p->mode == PK_TORCH ? torch_global(mod, nm, &kind, &size) : find_global(p, mod, nm);
  if (g < 0 && p->mode == PK_TORCH) {
    int ml = mod->n > 60 ? 60 : (int)mod->n, nl = nm->n > 60 ? 60 : (int)nm->n;
    char a[64], b[64];
    for (int k = 0; k < ml; k++) a[k] = mod->p[k] >= 32 && mod->p[k] < 127 ? (char)mod->p[k] : '?';
    for (int k = 0; k < nl; k++) b[k] = nm->p[k] >= 32 && nm->p[k] < 127 ? (char)nm->p[k] : '?';
    a[ml] = b[nl] = 0;
    return PERR(p, "global %s.%s is not allowed (only torch._utils._rebuild_tensor_v2, torch's storage types and "
                "collections.OrderedDict are)", a, b);
  }
  if (g < 0) return -1;
  int x = new_val(p, V_GLOBAL);
  p->v[x].i = g;
  p->v[x].dt_kind = kind;
  p->v[x].dt_size = size;
  push(p, x);
  return 0;
}

static int find_global(pk *p, const pval *mod, const pval *nm) {
  static const struct { const char *mod, *name; int id; } allow[] = {
      {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
      {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
      {"numpy", "ndarray", G_NDARRAY},
      {"numpy", "dtype", G_DTYPE},
      {"numpy.core.numeric", "_frombuffer", G_FROMBUFFER},
      {"numpy._core.numeric", "_frombuffer", G_FROMBUFFER},
      {"_codecs", "encode", G_ENCODE},
      {"codecs", "encode", G_ENCODE},
  };
  for (size_t k = 0; k < sizeof allow / sizeof allow[0]; k++)
    if (is_str(mod, allow[k].mod) && is_str(nm, allow[k].name)) return allow[k].id;
  int ml = mod->n > 60 ? 60 : (int)mod->n, nl = nm->n > 60 ? 60 : (int)nm->n;
  char a[64], b[64];  // printable copies for the message
  for (int k = 0; k < ml; k++) a[k] = mod->p[k] >= 32 && mod->p[k] < 127 ? (char)mod->p[k] : '?';
  for (int k = 0; k < nl; k++) b[k] = nm->p[k] >= 32 && nm->p[k] < 127 ? (char)nm->p[k] : '?';
  a[ml] = b[nl] = 0;
  return PERR(p, "global %s.%s is not allowed (only numpy array and dtype constructors are)", a, b);
}

static int want(pk *p, int x, int kind, const char *what) {
  if (p->v[x].kind != kind)
    return PERR(p, "%s is a %s, expected a %s", what, kind_name[p->v[x].kind], kind_name[kind]);
  return 0;
}

// numpy dtype strings: an optional byte order, a kind letter, an item size ("u1", "<f8", "|b1").
static int parse_dtype(pk *p, const pval *s, pval *dt) {
  const uint8_t *c = s->p;
  size_t n = s->n;
  if (n && (c[0] == '<' || c[0] == '>' || c[0] == '|' || c[0] == '=')) c++, n--;
  if (n < 2 || n > 3 || !strchr("biufc", c[0]) || !c[0]) return PERR(p, "unsupported dtype string");
  int size = 0;
  for (size_t k = 1; k < n; k++) {
    if (c[k] < '0' || c[k] > '9') return PERR(p, "unsupported dtype string");
    size = size * 10 + (c[k] - '0');
  }
  if (size < 1 || size > 16) return PERR(p, "dtype item size %d outside 1..16", size);
  dt->dt_kind = (char)c[0];
  dt->dt_size = size;
  return 0;
}

// Shape from a tuple of ints; the element count times item size must equal nbytes.
static int set_shape(pk *p, pval *a, const pval *shape, size_t nbytes) {
  if (shape->kind != V_TUPLE || shape->n_items > PK_MAX_DIMS)
    return PERR(p, "array shape is not a tuple of at most %d ints", PK_MAX_DIMS);
  uint64_t numel = 1;
  for (size_t k = 0; k < shape->n_items; k++) {
    const pval *d = &p->v[shape->items[k]];
    if (d->kind != V_INT || d->i < 0 || d->i > (1ll << 40)) return PERR(p, "array dimension %zu is not a size", k);
    a->shape[k] = d->i;
    if (d->i && numel > (UINT64_MAX >> 41)) return PERR(p, "array of more than 2^63 elements");
    numel *= (uint64_t)d->i;
  }
  a->ndim = (int)shape->n_items;
  if (numel > SIZE_MAX / 16 || numel * (uint64_t)a->dt_size != nbytes)
    return PERR(p, "array of %llu elements of %d bytes holds %zu bytes of data", (unsigned long long)numel,
                a->dt_size, nbytes);
  return 0;
}

// codecs.encode(text, 'latin1'): UTF-8 code points below 256 back to bytes.
static int latin1_bytes(pk *p, const pval *s, pval *out) {
  out->owned = xmalloc(s->n + 1);
  size_t o = 0;
  for (size_t k = 0; k < s->n;) {
    uint8_t c = s->p[k];
    if (c < 0x80) { out->owned[o++] = c; k++; continue; }
    if ((c & 0xe0) != 0xc0 || c < 0xc2 || c > 0xc3 || k + 1 >= s->n || (s->p[k + 1] & 0xc0) != 0x80)
      return PERR(p, "codecs.encode text is not latin1 (byte %zu of the string)", k);
    out->owned[o++] = (uint8_t)((c & 0x1f) << 6 | (s->p[k + 1] & 0x3f));
    k += 2;
  }
  out->p = out->owned;
  out->n = o;
  return 0;
}

// BINPERSID on ('storage', torch.<T>Storage, key, location, numel): the storage in member
// data/<key> of the zip, of numel elements.
static int persistent(pk *p, int pid) {
  const pval *t = &p->v[pid];
  if (t->kind != V_TUPLE || t->n_items != 5 || !is_str(&p->v[t->items[0]], "storage"))
    return PERR(p, "persistent id is not ('storage', type, key, location, numel)");
  const pval *ty = &p->v[t->items[1]], *key = &p->v[t->items[2]], *n = &p->v[t->items[4]];
  if (ty->kind != V_GLOBAL || ty->i != G_STORAGE) return PERR(p, "persistent id's type is not a torch storage type");
  if (key->kind != V_STR || key->n == 0 || key->n > 64) return PERR(p, "storage key is not a short string");
  for (size_t k = 0; k < key->n; k++)
    if (!(key->p[k] >= '0' && key->p[k] <= '9') && !(key->p[k] >= 'a' && key->p[k] <= 'z') && key->p[k] != '_')
      return PERR(p, "storage key holds byte 0x%02x (torch writes digits)", key->p[k]);
  if (n->kind != V_INT || n->i < 0 || n->i > (INT64_C(1) << 40)) return PERR(p, "storage size is not an element count");
  int x = new_val(p, V_STORAGE);
  pval *s = &p->v[x];
  t = &p->v[pid];  // new_val may have moved the pool
  s->dt_kind = p->v[t->items[1]].dt_kind, s->dt_size = p->v[t->items[1]].dt_size;
  s->p = p->v[t->items[2]].p, s->n = p->v[t->items[2]].n;
  s->i = p->v[t->items[4]].i;
  push(p, x);
  return 0;
}

// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]): only
// dense row-major tensors lying inside their storage. The new value's index, or -1.
static int rebuild_tensor(pk *p, int args) {
  const pval *a = &p->v[args];
  if (a->n_items < 6 || a->n_items > 7) return PERR(p, "_rebuild_tensor_v2 wants 6 or 7 arguments, got %zu", a->n_items);
  const pval *st = &p->v[a->items[0]], *off = &p->v[a->items[1]], *size = &p->v[a->items[2]], *stride = &p->v[a->items[3]];
  if (st->kind != V_STORAGE) return PERR(p, "_rebuild_tensor_v2's storage is a %s", kind_name[st->kind]);
  if (off->kind != V_INT || off->i < 0) return PERR(p, "_rebuild_tensor_v2's storage offset is not a count");
  if (size->kind != V_TUPLE || stride->kind != V_TUPLE || size->n_items != stride->n_items || size->n_items > PK_MAX_DIMS)
    return PERR(p, "_rebuild_tensor_v2's size and stride are not tuples of one length (at most %d)", PK_MAX_DIMS);
  int64_t shape[PK_MAX_DIMS];
  uint64_t nonzero = 1;  // the product of the nonzero dims: below 2^62, so strides fit too
  bool empty = false;
  int nd = (int)size->n_items;
  for (int k = 0; k < nd; k++) {
    const pval *d = &p->v[size->items[k]];
    if (d->kind != V_INT || d->i < 0 || d->i > (INT64_C(1) << 40)) return PERR(p, "tensor dimension %d is not a size", k);
    shape[k] = d->i;
    empty |= d->i == 0;
    if (d->i && nonzero > (UINT64_C(1) << 62) / (uint64_t)d->i) return PERR(p, "tensor shape overflows (more than 2^62 elements)");
    if (d->i) nonzero *= (uint64_t)d->i;
  }
  uint64_t numel = empty ? 0 : nonzero;
  int64_t want = 1;  // row-major: stride[k] = prod(shape[k+1:])
  for (int k = nd - 1; k >= 0; k--) {
    const pval *d = &p->v[stride->items[k]];
    if (d->kind != V_INT || (shape[k] > 1 && d->i != want))
      return PERR(p, "tensor is not dense row-major (dimension %d: stride %lld, expected %lld)", k,
                  d->kind == V_INT ? (long long)d->i : -1ll, (long long)want);
    if (shape[k]) want *= shape[k];
  }
  if ((uint64_t)off->i > (uint64_t)st->i || numel > (uint64_t)st->i - (uint64_t)off->i)
    return PERR(p, "tensor of %llu elements at offset %lld runs past its storage of %lld", (unsigned long long)numel,
                (long long)off->i, (long long)st->i);
  int x = new_val(p, V_TENSOR);
  pval *t = &p->v[x];
  a = &p->v[args];
  t->storage = a->items[0];
  t->offset = p->v[a->items[1]].i;
  t->ndim = nd;
  memcpy(t->shape, shape, sizeof shape);
  return x;
}

// REDUCE / NEWOBJ: only the allow-listed callables, each with the arguments numpy gives it.
static int apply(pk *p, int fn, int args) {
  if (want(p, fn, V_GLOBAL, "the callable") || want(p, args, V_TUPLE, "the arguments")) return -1;
  const pval *a = &p->v[args];
  int g = (int)p->v[fn].i, r;
  size_t na = a->n_items;
#define ARG(k) (&p->v[a->items[k]])
  switch (g) {
    case G_RECONSTRUCT:  // (ndarray, (0,), b'b'): an empty array the BUILD fills
      if (na != 3 || ARG(0)->kind != V_GLOBAL || ARG(0)->i != G_NDARRAY)
        return PERR(p, "_reconstruct wants (numpy.ndarray, shape, dtype char)");
      r = new_val(p, V_ARRAY);
      break;
    case G_DTYPE: {  // ('u1', align, copy)
      if (na < 1 || (ARG(0)->kind != V_STR && ARG(0)->kind != V_BYTES)) return PERR(p, "numpy.dtype wants a dtype string");
      pval dt = {0};
      if (parse_dtype(p, ARG(0), &dt)) return -1;
      r = new_val(p, V_DTYPE);
      p->v[r].dt_kind = dt.dt_kind;
      p->v[r].dt_size = dt.dt_size;
      break;
    }
    case G_ENCODE: {  // (text, 'latin1')
      if (na != 2 || ARG(0)->kind != V_STR || !(is_str(ARG(1), "latin1") || is_str(ARG(1), "latin-1")))
        return PERR(p, "codecs.encode is allowed only as (text, 'latin1')");
      int text = a->items[0];
      r = new_val(p, V_BYTES);  // may move the pool: index, not pointer
      if (latin1_bytes(p, &p->v[text], &p->v[r])) return -1;
      break;
    }
    case G_FROMBUFFER: {  // (buffer, dtype, shape, order): protocol 5's in-band arrays
      if (na != 4 || ARG(0)->kind != V_BYTES || ARG(1)->kind != V_DTYPE)
        return PERR(p, "_frombuffer wants (bytes, dtype, shape, order)");
      if (!is_str(ARG(3), "C")) return PERR(p, "only C-ordered arrays are supported");
      r = new_val(p, V_ARRAY);
      pval *o = &p->v[r];
      a = &p->v[args];  // new_val may have moved the pool
      o->p = ARG(0)->p;
      o->n = ARG(0)->n;
      o->dt_kind = ARG(1)->dt_kind;
      o->dt_size = ARG(1)->dt_size;
      if (set_shape(p, o, ARG(2), o->n)) return -1;
      break;
    }
    case G_ODICT:  // () or ([pairs]): an empty dict the SETITEMS fill
      if (na != 0) return PERR(p, "collections.OrderedDict is allowed only without arguments");
      r = new_val(p, V_DICT);
      break;
    case G_REBUILD:
      r = rebuild_tensor(p, args);
      if (r < 0) return -1;
      break;
    default: return PERR(p, "%s cannot be called", g == G_NDARRAY ? "numpy.ndarray" : "this callable");
  }
#undef ARG
  push(p, r);
  return 0;
}

// BUILD: the state of an array ((1, shape, dtype, fortran, raw)) or of a dtype (byte order etc.).
static int build(pk *p, int obj, int state) {
  pval *o = &p->v[obj];
  if (o->kind == V_DICT && p->mode == PK_TORCH) return 0;  // a state dict's _metadata: not needed
  if (o->kind == V_DTYPE) return want(p, state, V_TUPLE, "the dtype state");
  if (o->kind != V_ARRAY || o->ndim >= 0) return PERR(p, "BUILD on a %s", kind_name[o->kind]);
  const pval *s = &p->v[state];
  if (s->kind != V_TUPLE || s->n_items != 5) return PERR(p, "array state is not (version, shape, dtype, fortran, data)");
  const pval *dt = &p->v[s->items[2]], *fo = &p->v[s->items[3]], *raw = &p->v[s->items[4]];
  if (dt->kind != V_DTYPE) return PERR(p, "array dtype is a %s", kind_name[dt->kind]);
  if (fo->kind != V_BOOL && fo->kind != V_INT) return PERR(p, "array fortran flag is a %s", kind_name[fo->kind]);
  if (raw->kind != V_BYTES && raw->kind != V_STR)
    return PERR(p, "array data is a %s (object arrays are not supported)", kind_name[raw->kind]);
  o->dt_kind = dt->dt_kind;
  o->dt_size = dt->dt_size;
  o->fortran = fo->i != 0;
  o->p = raw->p;
  o->n = raw->n;
  return set_shape(p, o, &p->v[s->items[1]], raw->n);
}

static int op_text(pk *p, int kind, int lbytes, const char *what) {
  size_t n = 0;
  if (read_len(p, lbytes, what, &n)) return -1;
  int x = new_val(p, kind);
  p->v[x].p = p->buf + p->pos;
  p->v[x].n = n;
  p->pos += n;
  push(p, x);
  return 0;
}

static int op_int(pk *p, int nbytes, int is_signed) {
  if (need(p, (size_t)nbytes, "an integer")) return -1;
  uint64_t u = rd_le(p->buf + p->pos, nbytes);
  p->pos += (size_t)nbytes;
  int64_t v = (int64_t)u;
  if (is_signed && nbytes < 8 && (u >> (8 * nbytes - 1)) & 1) v = (int64_t)(u | ~((UINT64_C(1) << (8 * nbytes)) - 1));
  int x = new_val(p, V_INT);
  p->v[x].i = v;
  push(p, x);
  return 0;
}

static int memo_put(pk *p, uint64_t idx) {
  if (!p->ns) return PERR(p, "memo store with an empty stack");
  if (idx > p->len || idx >= PK_MAX_VALUES) return PERR(p, "memo index %llu beyond the file's size or %d", (unsigned long long)idx, PK_MAX_VALUES);
  if (idx >= p->n_memo) {
    size_t n = (size_t)idx + 1;
    p->memo = xrealloc(p->memo, n * sizeof(int));
    for (size_t k = p->n_memo; k < n; k++) p->memo[k] = -1;
    p->n_memo = n;
  }
  p->memo[idx] = p->stack[p->ns - 1];
  return 0;
}

static int memo_get(pk *p, uint64_t idx) {
  if (idx >= p->n_memo || p->memo[idx] < 0) return PERR(p, "memo index %llu was never stored", (unsigned long long)idx);
  push(p, p->memo[idx]);
  return 0;
}

// A tuple of the n values on top of the stack (n < 0: those above the top mark).
static int op_tuple(pk *p, int n) {
  size_t from = 0;
  if (n < 0) {
    if (pop_mark(p, &from)) return -1;
  } else {
    if (p->ns < floor_of(p) + (size_t)n) return PERR(p, "stack underflow (TUPLE%d)", n);
    from = p->ns - (size_t)n;
  }
  int t = new_val(p, V_TUPLE);
  for (size_t k = from; k < p->ns; k++) add_item(&p->v[t], p->stack[k]);
  p->ns = from;
  push(p, t);
  return 0;
}

// SETITEM(S) / APPEND(S): the values from position from go into the container below them.
static int fill(pk *p, size_t from, int pairs) {
  if (from == 0 || from > p->ns) return PERR(p, "no container below the items");
  if (from - 1 < floor_of(p)) return PERR(p, "stack underflow (container)");
  int c = p->stack[from - 1];
  int kind = pairs ? V_DICT : V_LIST;
  if (p->v[c].kind != kind) return PERR(p, "%s into a %s", pairs ? "SETITEM" : "APPEND", kind_name[p->v[c].kind]);
  if (pairs && (p->ns - from) % 2) return PERR(p, "SETITEMS with an odd number of values");
  for (size_t k = from; k < p->ns; k++) add_item(&p->v[c], p->stack[k]);
  p->ns = from;
  return 0;
}

static void pk_free(pk *p) {
  for (size_t k = 0; k < p->nv; k++) {
    free(p->v[k].items);
    free(p->v[k].owned);
  }
  free(p->v);
  free(p->stack);
  free(p->marks);
  free(p->memo);
}

// Runs the machine to STOP; *root is the unpickled value.
static int pk_run(pk *p, int *root) {
  if (p->len < 2 || p->buf[0] != 0x80)
    return igpt_err("%s: byte offset 0: no pickle PROTO opcode (protocol 2 or later expected): not a pickle", p->name);
  for (;;) {
    p->op = p->pos;
    if (p->nv >= PK_MAX_VALUES) return PERR(p, "more than %d values (a batch holds about 130000)", PK_MAX_VALUES);
    if (p->pos >= p->len) return PERR(p, "the file ends before the pickle's STOP (truncated?)");
    uint8_t c = p->buf[p->pos++];
    int x, y, z;
    size_t from = 0, n = 0;
    switch (c) {
      case 0x80:  // PROTO
        if (need(p, 1, "PROTO")) return -1;
        if (p->buf[p->pos] < 2 || p->buf[p->pos] > 5) return PERR(p, "pickle protocol %d (2 to 5 supported)", p->buf[p->pos]);
        p->pos++;
        break;
      case 0x95:  // FRAME: a length hint only
        if (read_len(p, 8, "FRAME", &n)) return -1;
        break;
      case '(':  // MARK
        if (p->nm == p->cap_m) {
          p->cap_m = p->cap_m ? 2 * p->cap_m : 16;
          p->marks = xrealloc(p->marks, p->cap_m * sizeof(size_t));
        }
        p->marks[p->nm++] = p->ns;
        break;
      case '.':  // STOP
        if (pop(p, root)) return -1;
        if (p->ns || p->nm) return PERR(p, "STOP leaves %zu values and %zu marks behind", p->ns, p->nm);
        return 0;
      case '}': push(p, new_val(p, V_DICT)); break;
      case ']': push(p, new_val(p, V_LIST)); break;
      case ')': push(p, new_val(p, V_TUPLE)); break;
      case 'd':  // DICT
      case 'l':  // LIST
        if (pop_mark(p, &from)) return -1;
        x = new_val(p, c == 'd' ? V_DICT : V_LIST);
        if (c == 'd' && (p->ns - from) % 2) return PERR(p, "DICT with an odd number of values");
        for (size_t k = from; k < p->ns; k++) add_item(&p->v[x], p->stack[k]);
        p->ns = from;
        push(p, x);
        break;
      case 's':  // SETITEM
        if (p->ns < floor_of(p) + 3) return PERR(p, "stack underflow (SETITEM)");
        if (fill(p, p->ns - 2, 1)) return -1;
        break;
      case 'a':  // APPEND
        if (p->ns < floor_of(p) + 2) return PERR(p, "stack underflow (APPEND)");
        if (fill(p, p->ns - 1, 0)) return -1;
        break;
      case 'u':  // SETITEMS
      case 'e':  // APPENDS
        if (pop_mark(p, &from) || fill(p, from, c == 'u')) return -1;
        break;
      case 't': if (op_tuple(p, -1)) return -1; break;
      case 0x85: if (op_tuple(p, 1)) return -1; break;
      case 0x86: if (op_tuple(p, 2)) return -1; break;
      case 0x87: if (op_tuple(p, 3)) return -1; break;
      case 'J': if (op_int(p, 4, 1)) return -1; break;
      case 'K': if (op_int(p, 1, 0)) return -1; break;
      case 'M': if (op_int(p, 2, 0)) return -1; break;
      case 0x8a:  // LONG1
        if (need(p, 1, "LONG1")) return -1;
        n = p->buf[p->pos++];
        if (n > 8) return PERR(p, "LONG1 of %zu bytes (integers beyond 64 bits are not supported)", n);
        if (need(p, n, "LONG1")) return -1;
        if (n == 0) { x = new_val(p, V_INT); push(p, x); break; }
        if (op_int(p, (int)n, 1)) return -1;
        break;
      case 'N': push(p, new_val(p, V_NONE)); break;
      case 0x88:
      case 0x89:
        x = new_val(p, V_BOOL);
        p->v[x].i = c == 0x88;
        push(p, x);
        break;
      case 'G':  // BINFLOAT: kept as a float of unread value (nothing here needs one)
        if (need(p, 8, "BINFLOAT")) return -1;
        p->pos += 8;
        push(p, new_val(p, V_FLOAT));
        break;
      case 'X': if (op_text(p, V_STR, 4, "BINUNICODE")) return -1; break;
      case 0x8c: if (op_text(p, V_STR, 1, "SHORT_BINUNICODE")) return -1; break;
      case 0x8d: if (op_text(p, V_STR, 8, "BINUNICODE8")) return -1; break;
      case 'T': if (op_text(p, V_BYTES, 4, "BINSTRING")) return -1; break;  // Python 2 str
      case 'U': if (op_text(p, V_BYTES, 1, "SHORT_BINSTRING")) return -1; break;
      case 'B': if (op_text(p, V_BYTES, 4, "BINBYTES")) return -1; break;
      case 'C': if (op_text(p, V_BYTES, 1, "SHORT_BINBYTES")) return -1; break;
      case 0x8e: if (op_text(p, V_BYTES, 8, "BINBYTES8")) return -1; break;
      case 0x96: if (op_text(p, V_BYTES, 8, "BYTEARRAY8")) return -1; break;
      case 'q':
        if (need(p, 1, "BINPUT") || memo_put(p, p->buf[p->pos])) return -1;
        p->pos++;
        break;
      case 'r':
        if (need(p, 4, "LONG_BINPUT") || memo_put(p, rd_le(p->buf + p->pos, 4))) return -1;
        p->pos += 4;
        break;
      case 0x94: if (memo_put(p, p->n_memo)) return -1; break;  // MEMOIZE
      case 'h':
        if (need(p, 1, "BINGET") || memo_get(p, p->buf[p->pos])) return -1;
        p->pos++;
        break;
      case 'j':
        if (need(p, 4, "LONG_BINGET") || memo_get(p, rd_le(p->buf + p->pos, 4))) return -1;
        p->pos += 4;
        break;
      case 'c': {  // GLOBAL "module\nname\n"
        const uint8_t *s = p->buf + p->pos, *e = p->buf + p->len;
        const uint8_t *nl1 = memchr(s, '\n', (size_t)(e - s));
        const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(e - nl1 - 1)) : NULL;
        if (!nl2) return PERR(p, "GLOBAL without its two newline-terminated names (truncated?)");
        pval mod = {.kind = V_STR, .p = s, .n = (size_t)(nl1 - s)}, nm = {.kind = V_STR, .p = nl1 + 1, .n = (size_t)(nl2 - nl1 - 1)};
        if (push_global(p, &mod, &nm)) return -1;
        p->pos = (size_t)(nl2 + 1 - p->buf);
        break;
      }
      case 0x93:  // STACK_GLOBAL
        (void)z;
        if (pop(p, &y) || pop(p, &x)) return -1;
        if (p->v[x].kind != V_STR || p->v[y].kind != V_STR) return PERR(p, "STACK_GLOBAL names are not strings");
        if (push_global(p, &p->v[x], &p->v[y])) return -1;
        break;
      case 'Q':  // BINPERSID: torch's storages
        if (p->mode != PK_TORCH) return PERR(p, "persistent ids are not supported here");
        if (pop(p, &x) || persistent(p, x)) return -1;
        break;
      case 'R':     // REDUCE
      case 0x81:    // NEWOBJ
        if (pop(p, &y) || pop(p, &x) || apply(p, x, y)) return -1;
        break;
      case 'b':  // BUILD
        if (pop(p, &y) || pop(p, &x) || build(p, x, y)) return -1;
        push(p, x);
        break;
      default: return PERR(p, "opcode 0x%02x is not supported (only the data opcodes of protocols 2 to 5 are)", c);
    }
  }
}

// The dict's value under key, or -1.
static int dict_get(const pk *p, int d, const char *key) {
  const pval *v = &p->v[d];
  for (size_t k = 0; k + 1 < v->n_items; k += 2)
    if (is_str(&p->v[v->items[k]], key)) return v->items[k + 1];
  return -1;
}

int decode_imagenet_batch(const uint8_t *buf, size_t len, const char *name, int size, image_set *out) {
  pk p = {.buf = buf, .len = len, .name = name};
  int root, rc = -1;
  memset(out, 0, sizeof *out);
  if (pk_run(&p, &root)) goto done;
  p.op = 0;
  if (p.v[root].kind != V_DICT) { pk_err(&p, "the pickle holds a %s, expected a dict", kind_name[p.v[root].kind]); goto done; }
  int di = dict_get(&p, root, "data"), li = dict_get(&p, root, "labels");
  if (di < 0 || li < 0) { pk_err(&p, "the dict lacks '%s'", di < 0 ? "data" : "labels"); goto done; }
  const pval *d = &p.v[di], *l = &p.v[li];
  p.op = d->off;
  if (d->kind != V_ARRAY || d->ndim < 0) { pk_err(&p, "'data' is a %s, expected a numpy array", kind_name[d->kind]); goto done; }
  if (d->dt_kind != 'u' || d->dt_size != 1) { pk_err(&p, "'data' has dtype %c%d, expected uint8", d->dt_kind, d->dt_size); goto done; }
  int64_t per = 3ll * size * size;
  if (d->ndim != 2 || d->shape[1] != per) {
    pk_err(&p, "'data' has %d dims (second %lld), expected [N, %lld] for %dx%d images", d->ndim,
           d->ndim >= 2 ? (long long)d->shape[1] : -1ll, (long long)per, size, size);
    goto done;
  }
  if (d->fortran && d->shape[0] > 1) { pk_err(&p, "'data' is Fortran-ordered"); goto done; }
  p.op = l->off;
  if (l->kind != V_LIST && l->kind != V_TUPLE) { pk_err(&p, "'labels' is a %s, expected a list", kind_name[l->kind]); goto done; }
  int64_t n = d->shape[0];
  if ((int64_t)l->n_items != n) { pk_err(&p, "%zu labels for %lld images", l->n_items, (long long)n); goto done; }
  for (int64_t i = 0; i < n; i++) {
    const pval *y = &p.v[l->items[i]];
    p.op = y->off;
    if (y->kind != V_INT || y->i < 1 || y->i > 1000) {
      if (y->kind == V_INT) pk_err(&p, "label %lld of image %lld outside 1..1000", (long long)y->i, (long long)i);
      else pk_err(&p, "label of image %lld is a %s", (long long)i, kind_name[y->kind]);
      goto done;
    }
  }
  image_set_alloc(out, n, size, size, 1000);
  const int P = size * size;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *planes = d->p + (size_t)i * (size_t)per;
    uint8_t *dst = out->pixels + (size_t)i * (size_t)per;
    out->labels[i] = (int32_t)p.v[l->items[i]].i - 1;
    for (int q = 0; q < P; q++)  // CHW planes -> HWC
      for (int c = 0; c < 3; c++) dst[3 * q + c] = planes[c * P + q];
  }
  rc = 0;
done:
  pk_free(&p);
  return rc;
}

int decode_torch_pickle(const uint8_t *buf, size_t len, const char *name, torch_tensor **out, int *n_out) {
  pk p = {.buf = buf, .len = len, .name = name, .mode = PK_TORCH};
  int root, rc = -1, n = 0;
  torch_tensor *t = NULL;
  *out = NULL, *n_out = 0;
  if (pk_run(&p, &root)) goto done;
  p.op = 0;
  const pval *d = &p.v[root];
  if (d->kind != V_DICT) { pk_err(&p, "the pickle holds a %s, expected a dict of tensors", kind_name[d->kind]); goto done; }
  t = xcalloc(d->n_items / 2 + 1, sizeof *t);
  for (size_t k = 0; k + 1 < d->n_items; k += 2, n++) {
    const pval *key = &p.v[d->items[k]], *v = &p.v[d->items[k + 1]];
    p.op = v->off;
    if (key->kind != V_STR || key->n == 0 || key->n > 255) { pk_err(&p, "a key is not a name"); goto done; }
    if (v->kind != V_TENSOR) { pk_err(&p, "'%.*s' is a %s, expected a tensor", (int)key->n, key->p, kind_name[v->kind]); goto done; }
    const pval *s = &p.v[v->storage];
    torch_tensor *x = &t[n];
    x->name = xasprintf("%.*s", (int)key->n, key->p);
    x->storage = xasprintf("%.*s", (int)s->n, s->p);
    x->dtype = s->dt_kind, x->elsize = s->dt_size;
    x->storage_numel = s->i, x->offset = v->offset, x->ndim = v->ndim;
    memcpy(x->shape, v->shape, sizeof x->shape);
  }
  rc = 0;
done:
  pk_free(&p);
  if (rc) torch_tensors_free(t, t ? n + 1 : 0);  // t has room for n + 1; the last may be unfilled
  else *out = t, *n_out = n;
  return rc;
}

void torch_tensors_free(torch_tensor *t, int n) {
  for (int i = 0; t && i < n; i++) {
    free(t[i].name);
    free(t[i].storage);
  }
  free(t);
}
