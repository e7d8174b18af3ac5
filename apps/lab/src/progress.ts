/** The lab's progress reporter is core's (`makeProgress` in @mmlm/core/experiment). */
export { makeProgress, type ProgressMode } from '@mmlm/core/experiment';
