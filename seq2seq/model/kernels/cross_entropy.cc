// Label-smoothed cross-entropy over the logits, its gradient, and the token metrics, each in
// one pass over every (token, vocabulary) row.
//
// TensorFlow computes them as a chain of full-size operations (log_softmax, the mean over the
// vocabulary, the gather; exp, subtract, multiply, scatter; logsumexp again and argmax for the
// metrics), each one more pass over a (tokens, vocabulary) tensor of 5.6M floats a batch.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace seq2seq {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::shape_inference::InferenceContext;

REGISTER_OP("Seq2seqSmoothedCrossEntropy")
    .Input("logits: float")  // (tokens, vocabulary)
    .Input("labels: int32")  // (tokens,)
    .Output("losses: float")          // (tokens,): against (1 - eps) one-hot + eps uniform
    .Output("log_normalizers: float")  // (tokens,): logsumexp of each row
    .Attr("label_smoothing: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(1));
      return absl::OkStatus();
    });

REGISTER_OP("Seq2seqSmoothedCrossEntropyGrad")
    .Input("logits: float")
    .Input("labels: int32")
    .Input("log_normalizers: float")
    .Input("upstream: float")  // (tokens,)
    .Output("d_logits: float")
    .Attr("label_smoothing: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    });

REGISTER_OP("Seq2seqTokenStatistics")
    .Input("logits: float")
    .Input("labels: int32")
    .Output("negative_log_likelihood: float")  // (tokens,): -log softmax(logits)[label]
    .Output("hits: float")  // (tokens,): 1 where the first largest logit is the label's, else 0
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(1));
      return absl::OkStatus();
    });

using Row = Eigen::TensorMap<Eigen::Tensor<const float, 1, Eigen::RowMajor>>;
using OutRow = Eigen::TensorMap<Eigen::Tensor<float, 1, Eigen::RowMajor>>;

struct Rows {
  const float* logits;
  const int32_t* labels;
  int64_t count, vocabulary;
  Row row(int64_t r) const { return Row(logits + r * vocabulary, vocabulary); }
};

// Checks the shapes and every label, and points `rows` at them.
absl::Status read_rows(OpKernelContext* context, Rows* rows) {
  const Tensor& logits = context->input(0);
  const Tensor& labels = context->input(1);
  if (logits.dims() != 2 || labels.dims() != 1 || labels.dim_size(0) != logits.dim_size(0)) {
    return absl::InvalidArgumentError("logits must be (tokens, vocabulary), labels (tokens,)");
  }
  rows->logits = logits.flat<float>().data();
  rows->labels = labels.flat<int32_t>().data();
  rows->count = logits.dim_size(0);
  rows->vocabulary = logits.dim_size(1);
  for (int64_t r = 0; r < rows->count; ++r) {
    if (rows->labels[r] < 0 || rows->labels[r] >= rows->vocabulary) {
      return absl::InvalidArgumentError(absl::StrCat("label ", rows->labels[r], " of token ", r,
                                                     " is outside [0, ", rows->vocabulary, ")"));
    }
  }
  return absl::OkStatus();
}

// Runs `work(first, last)` over the rows on TensorFlow's intra-op threads.
template <typename Work>
void for_rows(OpKernelContext* context, const Rows& rows, Work work) {
  auto* workers = context->device()->tensorflow_cpu_worker_threads();
  tensorflow::Shard(workers->num_threads, workers->workers, rows.count, 20 * rows.vocabulary,
                    work);
}

float max_of(const Row& row) {
  Eigen::Tensor<float, 0, Eigen::RowMajor> largest = row.maximum();
  return largest();
}

float log_sum_exp(const Row& row, float largest) {
  Eigen::Tensor<float, 0, Eigen::RowMajor> total = (row - largest).exp().sum();
  return largest + std::log(total());
}

class SmoothedCrossEntropyOp : public OpKernel {
 public:
  explicit SmoothedCrossEntropyOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("label_smoothing", &eps_));
  }

  void Compute(OpKernelContext* context) override {
    Rows rows;
    OP_REQUIRES_OK(context, read_rows(context, &rows));
    Tensor *losses, *normalizers;
    OP_REQUIRES_OK(context, context->allocate_output(0, context->input(1).shape(), &losses));
    OP_REQUIRES_OK(context, context->allocate_output(1, context->input(1).shape(), &normalizers));
    float* loss = losses->flat<float>().data();
    float* lse = normalizers->flat<float>().data();
    const float eps = eps_;
    for_rows(context, rows, [&](int64_t first, int64_t last) {
      for (int64_t r = first; r < last; ++r) {
        const Row row = rows.row(r);
        lse[r] = log_sum_exp(row, max_of(row));
        Eigen::Tensor<float, 0, Eigen::RowMajor> mean = row.mean();
        // -(1-eps) log p(label) - eps mean(log p), with log p = logits - lse
        loss[r] = lse[r] - (1.0f - eps) * row(rows.labels[r]) - eps * mean();
      }
    });
  }

 private:
  float eps_;
};

class SmoothedCrossEntropyGradOp : public OpKernel {
 public:
  explicit SmoothedCrossEntropyGradOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("label_smoothing", &eps_));
  }

  void Compute(OpKernelContext* context) override {
    Rows rows;
    OP_REQUIRES_OK(context, read_rows(context, &rows));
    const float* lse = context->input(2).flat<float>().data();
    const float* upstream = context->input(3).flat<float>().data();
    Tensor* gradient;
    OP_REQUIRES_OK(context, context->allocate_output(0, context->input(0).shape(), &gradient));
    float* out = gradient->flat<float>().data();
    const float eps = eps_, uniform = eps_ / static_cast<float>(rows.vocabulary);
    for_rows(context, rows, [&](int64_t first, int64_t last) {
      for (int64_t r = first; r < last; ++r) {
        OutRow d(out + r * rows.vocabulary, rows.vocabulary);
        d = ((rows.row(r) - lse[r]).exp() - uniform) * upstream[r];  // (softmax - eps/V) * up
        d(rows.labels[r]) -= (1.0f - eps) * upstream[r];
      }
    });
  }

 private:
  float eps_;
};

class TokenStatisticsOp : public OpKernel {
 public:
  explicit TokenStatisticsOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    Rows rows;
    OP_REQUIRES_OK(context, read_rows(context, &rows));
    Tensor *nll_tensor, *hits_tensor;
    OP_REQUIRES_OK(context, context->allocate_output(0, context->input(1).shape(), &nll_tensor));
    OP_REQUIRES_OK(context, context->allocate_output(1, context->input(1).shape(), &hits_tensor));
    float* nll = nll_tensor->flat<float>().data();
    float* hits = hits_tensor->flat<float>().data();
    for_rows(context, rows, [&](int64_t first, int64_t last) {
      for (int64_t r = first; r < last; ++r) {
        const Row row = rows.row(r);
        const float largest = max_of(row);
        const float* begin = rows.logits + r * rows.vocabulary;
        const int64_t argmax = std::find(begin, begin + rows.vocabulary, largest) - begin;
        nll[r] = log_sum_exp(row, largest) - row(rows.labels[r]);
        hits[r] = argmax == rows.labels[r] ? 1.0f : 0.0f;
      }
    });
  }
};

REGISTER_KERNEL_BUILDER(Name("Seq2seqSmoothedCrossEntropy").Device(DEVICE_CPU),
                        SmoothedCrossEntropyOp);
REGISTER_KERNEL_BUILDER(Name("Seq2seqSmoothedCrossEntropyGrad").Device(DEVICE_CPU),
                        SmoothedCrossEntropyGradOp);
REGISTER_KERNEL_BUILDER(Name("Seq2seqTokenStatistics").Device(DEVICE_CPU), TokenStatisticsOp);

}  // namespace seq2seq
