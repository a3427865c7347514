import { shortLabel } from './buckets.ts';

/** First, middle and last bucket labels, each under its own bar (slots = bars + projected bars). */
export function Axis({ labels, slots }: { labels: string[]; slots: number }) {
  const picks = [0, Math.floor((labels.length - 1) / 2), labels.length - 1].filter(
    (value, index, all) => value >= 0 && all.indexOf(value) === index,
  );
  return (
    <div className="axis" aria-hidden="true">
      {picks.map((index) => {
        const center = ((index + 0.5) / Math.max(slots, 1)) * 100;
        const end = index === labels.length - 1 && slots === labels.length && index !== 0;
        const left = index === 0 ? 0 : end ? 100 : center;
        return (
          <span key={index} className={end ? 'axis-label end' : 'axis-label'} style={{ left: `${left}%` }}>
            {labels[index] ? shortLabel(labels[index]) : ''}
          </span>
        );
      })}
    </div>
  );
}
