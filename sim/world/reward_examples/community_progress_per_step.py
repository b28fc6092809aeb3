def reward_function(params):
    '''
    Community style: reward efficiency, the progress made per step, so a lap in fewer steps (a faster lap)
    earns more; a small reward for staying on track keeps the early episodes learning, and a bonus at the
    finish pays for the whole lap.
    '''
    if params['is_offtrack'] or not params['all_wheels_on_track']:
        return 1e-3

    steps = params['steps']
    progress = params['progress']
    reward = 0.1  # on track
    if steps > 0:
        # About 15 steps per second: progress per step times 100 is ~1 for a 1 m/s lap of a 20 m track.
        reward += 100.0 * progress / steps * (params['speed'] / 3.0)
    if progress >= 100.0:
        reward += 100.0 * 300.0 / max(steps, 1.0)  # fewer steps for the whole lap, bigger bonus
    return float(reward)
