// Checkpoints of a fine-tuning run (finetune_checkpoint.h).
#include "finetune_checkpoint.h"

#include <cmath>
#include <sstream>

#include "finetune_blocks.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"

namespace tlkit::model::finetune_detail {

namespace {

void write_tensors(torch::serialize::OutputArchive& a, const std::string& key,
                   const std::vector<at::Tensor>& v) {
  torch::serialize::OutputArchive sub;
  // CPU tensors: the checkpoint loads on either device.
  for (std::size_t i = 0; i < v.size(); ++i)
    sub.write("t" + std::to_string(i), v[i].detach().to(torch::kCPU));
  a.write(key, sub);
}

void read_tensors(torch::serialize::InputArchive& a, const std::string& key,
                  std::vector<at::Tensor>& v) {
  torch::serialize::InputArchive sub;
  a.read(key, sub);
  torch::NoGradGuard g;
  for (std::size_t i = 0; i < v.size(); ++i) {
    at::Tensor t;
    sub.read("t" + std::to_string(i), t);
    v[i].copy_(t);
  }
}

}  // namespace

json history_json(const std::vector<EpochRecord>& h) {
  json a = json::array();
  for (const auto& r : h)
    a.push_back({{"epoch", r.epoch},
                 {"lr", r.lr},
                 {"train_loss", r.train_loss},
                 {"train_acc", r.train_acc},
                 {"val_acc", r.val_acc},
                 {"seconds", r.seconds}});
  return a;
}

std::vector<EpochRecord> history_from_json(const json& a) {
  std::vector<EpochRecord> h;
  for (const auto& r : a)
    // A non-finite loss (a diverged run) is written as null.
    h.push_back({r["epoch"].get<int>(), r["lr"].get<double>(),
                 r["train_loss"].is_null() ? std::nan("") : r["train_loss"].get<double>(),
                 r["train_acc"].get<double>(), r["val_acc"].get<double>(),
                 r["seconds"].get<double>()});
  return h;
}

void write_json(const std::string& path, const json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

int load_checkpoint(const std::string& ckpt, const std::string& hash, const json& hashed,
                    CheckpointTensors t, torch::optim::Optimizer& opt, int& bad_epochs,
                    FinetuneRun& run, const torch::Device& device) {
  torch::serialize::InputArchive a;
  try {
    a.load_from(ckpt, device);
  } catch (const std::exception& e) {
    TLKIT_THROW_ARG("{}: not a readable checkpoint ({}); remove it to start afresh", ckpt,
                    one_line(e));
  }
  c10::IValue v;
  a.read("config_hash", v);
  c10::IValue cfg;
  a.read("config", cfg);
  json old = json::parse(cfg.toStringRef());
  old.erase("device");  // hashed before the device was left out of the hash
  if (v.toStringRef() != hash && old != hashed) {
    std::string diff;
    for (auto it = hashed.begin(); it != hashed.end(); ++it)
      if (!old.contains(it.key()) || old[it.key()] != it.value())
        diff += (diff.empty() ? "" : ", ") + it.key();
    TLKIT_THROW_ARG(
        "{} holds a checkpoint of a different configuration (differs in: {}); "
        "use another --out or remove the checkpoint",
        ckpt, diff.empty() ? "?" : diff);
  }
  read_tensors(a, "model", t.model);
  read_tensors(a, "head", t.head);
  read_tensors(a, "best_model", t.best_model);
  read_tensors(a, "best_head", t.best_head);
  torch::serialize::InputArchive oa;
  a.read("optimizer", oa);
  opt.load(oa);
  a.read("epoch", v);
  const int start = static_cast<int>(v.toInt());
  a.read("bad_epochs", v);
  bad_epochs = static_cast<int>(v.toInt());
  a.read("best_epoch", v);
  run.best_epoch = static_cast<int>(v.toInt());
  a.read("best_val_acc", v);
  run.best_val_acc = v.toDouble();
  a.read("early_stopped", v);
  run.early_stopped = v.toBool();
  a.read("history", v);
  run.history = history_from_json(json::parse(v.toStringRef()));
  run.resumed = true;
  run.resumed_from_epoch = start;
  return start;
}

void save_checkpoint(const std::string& ckpt, const std::string& hash, const json& hashed,
                     CheckpointTensors t, const std::vector<std::string>& model_names,
                     const torch::optim::Optimizer& opt, int epochs_done, int bad_epochs,
                     const FinetuneRun& run) {
  // Checkpoint atomically: a temporary file renamed over the previous one.
  torch::serialize::OutputArchive a;
  a.write("config_hash", c10::IValue(hash));
  a.write("config", c10::IValue(hashed.dump()));
  write_tensors(a, "model", t.model);
  write_tensors(a, "head", t.head);
  write_tensors(a, "best_model", t.best_model);
  write_tensors(a, "best_head", t.best_head);
  {
    std::string names;
    for (const auto& n : model_names) names += n + "\n";
    a.write("model_names", c10::IValue(names));
  }
  torch::serialize::OutputArchive oa;
  opt.save(oa);
  a.write("optimizer", oa);
  a.write("epoch", c10::IValue(static_cast<std::int64_t>(epochs_done)));
  a.write("bad_epochs", c10::IValue(static_cast<std::int64_t>(bad_epochs)));
  a.write("best_epoch", c10::IValue(static_cast<std::int64_t>(run.best_epoch)));
  a.write("best_val_acc", c10::IValue(run.best_val_acc));
  a.write("early_stopped", c10::IValue(run.early_stopped));
  a.write("history", c10::IValue(history_json(run.history).dump()));
  std::ostringstream bytes;  // then write_file_atomic: fsync, and a killed writer's temporary
  a.save_to(bytes);          // is removed by the next write (npy.h)
  write_file_atomic(ckpt, bytes.str());
}

}  // namespace tlkit::model::finetune_detail

namespace tlkit::model {

std::map<std::string, std::vector<float>> model_parameters(const std::string& model_path,
                                                           bool buffers) {
  torch::jit::Module m = torch::jit::load(model_path, torch::kCPU);
  std::map<std::string, std::vector<float>> out;
  auto put = [&](const std::string& name, const at::Tensor& v) {
    at::Tensor t = v.detach().to(torch::kFloat32).contiguous();
    out[name].assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  };
  for (const auto& p : m.named_parameters(true)) put(p.name, p.value);
  if (buffers)
    for (const auto& b : m.named_buffers(true)) put("buffer:" + b.name, b.value);
  return out;
}

std::map<std::string, std::vector<float>> checkpoint_parameters(const std::string& checkpoint,
                                                                bool buffers) {
  torch::serialize::InputArchive a;
  a.load_from(checkpoint, torch::kCPU);  // written on either device
  c10::IValue names_v;
  a.read("model_names", names_v);
  std::vector<std::string> names;
  {
    std::string n;
    for (const char ch : names_v.toStringRef()) {
      if (ch == '\n') {
        names.push_back(n);
        n.clear();
      } else {
        n += ch;
      }
    }
  }
  torch::serialize::InputArchive sub;
  a.read("model", sub);
  std::map<std::string, std::vector<float>> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!buffers && names[i].rfind("buffer:", 0) == 0) continue;
    at::Tensor t;
    sub.read("t" + std::to_string(i), t);
    t = t.to(torch::kFloat32).contiguous();
    out[names[i]].assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  return out;
}

}  // namespace tlkit::model
