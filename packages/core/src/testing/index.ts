/**
 * @mmlm/core/testing: the model contract of DESIGN.md (`runModelContract`), finite-difference
 * gradient checks (`checkGradients`) and the test backends (`TEST_BACKENDS`, `useBackend`).
 */
export {
  TEST_BACKENDS,
  useBackend,
} from './backends.js';
export {
  type ContractReport,
  type ModelContract,
  runModelContract,
} from './contract.js';
export {
  checkGradients,
  checkGradientsAsync,
  type GradCheckOptions,
  type GradCheckResult,
} from './gradcheck.js';
