export async function run(_flags: string[]): Promise<void> {
  console.log('the usage bench is not written yet');
}
