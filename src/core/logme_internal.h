// LogME from sufficient statistics, shared by LogmeAccumulator and score() (private).
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "tlkit/core/logme.h"

namespace tlkit::detail {

/// LogME from the upper triangle of F^T F (D x D), F^T Y (D x T, one column per target in output
/// order), ||y||^2 per target, N and D. Inputs must already be validated.
LogmeResult logme_from_gram(const Eigen::MatrixXd& gram_upper, const Eigen::MatrixXd& fty,
                            const Eigen::VectorXd& yy, std::int64_t n, std::int64_t d,
                            const LogmeOptions& options);

/// The same from the eigenvalues of F^T F (ascending) and V^T F^T Y, when the caller has already
/// decomposed F^T F.
LogmeResult logme_from_projection(const Eigen::VectorXd& eigenvalues, const Eigen::MatrixXd& vtfty,
                                  const Eigen::VectorXd& yy, std::int64_t n, std::int64_t d,
                                  const LogmeOptions& options);

}  // namespace tlkit::detail
