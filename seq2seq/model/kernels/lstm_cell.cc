// One LSTM step's gate arithmetic, forward and backward, as single CPU ops.
//
// TensorFlow runs each of a step's dozen element-wise operations as its own kernel, one pass over
// memory and one scheduling cost each, and computes bfloat16 one element at a time. These two
// kernels do the whole step in one pass, in float32 with Eigen's vectorized sigmoid and tanh,
// and store bfloat16 or float32. Gate order is Keras's: input, forget, cell, output.
#include <cstdint>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace seq2seq {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::InferenceContext;

REGISTER_OP("Seq2seqLstmCell")
    .Input("projected: T")  // (batch, 4 * units): x @ W + b
    .Input("recurrent: T")  // (batch, 4 * units): h_prev @ U
    .Input("c_prev: T")     // (batch, units)
    .Output("h: T")
    .Output("c: T")
    .Output("gates: T")   // (batch, 4 * units): sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
    .Output("tanh_c: T")  // (batch, units)
    .Attr("T: {float, bfloat16}")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(2));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(0));
      c->set_output(3, c->input(2));
      return absl::OkStatus();
    });

REGISTER_OP("Seq2seqLstmCellGrad")
    .Input("d_h: T")      // (batch, units): the loss's gradient of this step's h
    .Input("dh_next: T")  // (batch, units): the gradient arriving from step t + 1
    .Input("d_c: T")
    .Input("dc_next: T")
    .Input("gates: T")
    .Input("tanh_c: T")
    .Input("c_prev: T")
    .Output("dz: T")       // (batch, 4 * units): the gradient of projected + recurrent
    .Output("dc_prev: T")  // (batch, units)
    .Attr("T: {float, bfloat16}")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(4));
      c->set_output(1, c->input(0));
      return absl::OkStatus();
    });

using Floats = Eigen::TensorMap<Eigen::Tensor<float, 1, Eigen::RowMajor>>;

inline float to_float(float x) { return x; }
inline float to_float(Eigen::bfloat16 x) { return static_cast<float>(x); }
template <typename T>
inline T from_float(float x) { return static_cast<T>(x); }

template <typename T>
void load(const T* from, float* to, int64_t n) {
  for (int64_t k = 0; k < n; ++k) to[k] = to_float(from[k]);
}

template <typename T>
void store(const float* from, T* to, int64_t n) {
  for (int64_t k = 0; k < n; ++k) to[k] = from_float<T>(from[k]);
}

template <typename T>
class LstmCellOp : public OpKernel {
 public:
  explicit LstmCellOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& projected = context->input(0);
    const Tensor& recurrent = context->input(1);
    const Tensor& c_prev = context->input(2);
    OP_REQUIRES(context, projected.shape() == recurrent.shape(),
                absl::InvalidArgumentError("projected and recurrent differ in shape"));
    const int64_t batch = c_prev.dim_size(0), units = c_prev.dim_size(1);
    OP_REQUIRES(context, projected.dim_size(1) == 4 * units && projected.dim_size(0) == batch,
                absl::InvalidArgumentError("projected must be (batch, 4 * units)"));
    Tensor *h, *c, *gates, *tanh_c;
    OP_REQUIRES_OK(context, context->allocate_output(0, c_prev.shape(), &h));
    OP_REQUIRES_OK(context, context->allocate_output(1, c_prev.shape(), &c));
    OP_REQUIRES_OK(context, context->allocate_output(2, projected.shape(), &gates));
    OP_REQUIRES_OK(context, context->allocate_output(3, c_prev.shape(), &tanh_c));
    std::vector<float> z(4 * units), z2(4 * units), cell(units), cell_prev(units);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t row = b * 4 * units;
      load(projected.flat<T>().data() + row, z.data(), 4 * units);
      load(recurrent.flat<T>().data() + row, z2.data(), 4 * units);
      load(c_prev.flat<T>().data() + b * units, cell_prev.data(), units);
      for (int64_t k = 0; k < 4 * units; ++k) z[k] += z2[k];
      Floats ifo(z.data(), 2 * units), g(z.data() + 2 * units, units),
          o(z.data() + 3 * units, units);
      ifo = ifo.sigmoid();
      g = g.tanh();
      o = o.sigmoid();
      const float *i = z.data(), *f = z.data() + units, *gg = z.data() + 2 * units,
                  *oo = z.data() + 3 * units;
      for (int64_t k = 0; k < units; ++k) cell[k] = f[k] * cell_prev[k] + i[k] * gg[k];
      Floats cell_map(cell.data(), units), tanh_map(z2.data(), units);
      tanh_map = cell_map.tanh();
      store(z.data(), gates->flat<T>().data() + row, 4 * units);
      store(cell.data(), c->flat<T>().data() + b * units, units);
      store(z2.data(), tanh_c->flat<T>().data() + b * units, units);
      for (int64_t k = 0; k < units; ++k) z2[k] *= oo[k];
      store(z2.data(), h->flat<T>().data() + b * units, units);
    }
  }
};

template <typename T>
class LstmCellGradOp : public OpKernel {
 public:
  explicit LstmCellGradOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& gates = context->input(4);
    const int64_t batch = context->input(0).dim_size(0), units = context->input(0).dim_size(1);
    Tensor *dz, *dc_prev;
    OP_REQUIRES_OK(context, context->allocate_output(0, gates.shape(), &dz));
    OP_REQUIRES_OK(context, context->allocate_output(1, context->input(0).shape(), &dc_prev));
    std::vector<float> a(4 * units), out(4 * units), dh(units), dc(units), t1(units),
        tc(units), cp(units);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t row = b * units;
      load(context->input(0).flat<T>().data() + row, dh.data(), units);
      load(context->input(1).flat<T>().data() + row, t1.data(), units);
      for (int64_t k = 0; k < units; ++k) dh[k] += t1[k];
      load(context->input(2).flat<T>().data() + row, dc.data(), units);
      load(context->input(3).flat<T>().data() + row, t1.data(), units);
      load(gates.flat<T>().data() + 4 * row, a.data(), 4 * units);
      load(context->input(5).flat<T>().data() + row, tc.data(), units);
      load(context->input(6).flat<T>().data() + row, cp.data(), units);
      const float *i = a.data(), *f = a.data() + units, *g = a.data() + 2 * units,
                  *o = a.data() + 3 * units;
      float *di = out.data(), *df = out.data() + units, *dg = out.data() + 2 * units,
            *d_o = out.data() + 3 * units;
      for (int64_t k = 0; k < units; ++k) {
        const float d_cell = dc[k] + t1[k] + dh[k] * o[k] * (1.0f - tc[k] * tc[k]);
        di[k] = d_cell * g[k] * i[k] * (1.0f - i[k]);
        df[k] = d_cell * cp[k] * f[k] * (1.0f - f[k]);
        dg[k] = d_cell * i[k] * (1.0f - g[k] * g[k]);
        d_o[k] = dh[k] * tc[k] * o[k] * (1.0f - o[k]);
        t1[k] = d_cell * f[k];
      }
      store(out.data(), dz->flat<T>().data() + 4 * row, 4 * units);
      store(t1.data(), dc_prev->flat<T>().data() + row, units);
    }
  }
};

#define REGISTER(T)                                                                     \
  REGISTER_KERNEL_BUILDER(                                                              \
      Name("Seq2seqLstmCell").Device(DEVICE_CPU).TypeConstraint<T>("T"), LstmCellOp<T>); \
  REGISTER_KERNEL_BUILDER(                                                              \
      Name("Seq2seqLstmCellGrad").Device(DEVICE_CPU).TypeConstraint<T>("T"),            \
      LstmCellGradOp<T>);
REGISTER(float)
REGISTER(Eigen::bfloat16)

}  // namespace seq2seq
