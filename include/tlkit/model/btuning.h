// B-Tuning (`tlkit finetune --teachers`, docs/btuning.md): fine-tuning a student with a
// distillation term towards a LogME-weighted mixture of frozen teachers from a zoo,
//
//   You, Liu, Wang, Jordan, Long. "Ranking and Tuning Pre-trained Models: A New Paradigm for
//   Exploiting Model Hubs", JMLR 2022 (arXiv 2110.10545), Section 5; thuml/LogME b_tuning.py.
//
// For the student s and every teacher t, LogME on the training split gives the score L_t and the
// posterior mean weights m_t (C x D_t, core logme_weights). With pi = softmax(L / temperature)
// over the K teachers, each training batch x adds
//   tradeoff * mean_{i,c} ( [F_s(x) m_s^T]_{ic} - [sum_t pi_t F_t(x) m_t^T]_{ic} )^2
// to the cross-entropy of the student's head, the teachers frozen (eval mode, no gradients).
#pragma once

#include <vector>

namespace tlkit::model {

/// The teachers' mixing weights: softmax(scores / temperature), computed stably (the maximum
/// subtracted first). Throws tlkit::InputError for no scores, a temperature <= 0 or a non-finite
/// score.
std::vector<double> btuning_pi(const std::vector<double>& scores, double temperature);

}  // namespace tlkit::model
